import { isIP } from 'node:net'

/** Where a request came from, as recorded in the audit log. */
export interface ClientInfo {
  readonly ip: string | null
  readonly userAgent: string | null
  /** Set when a trusted caller forwarded its own client's address: the caller's own values. */
  readonly forwarderIp?: string
  readonly forwarderUserAgent?: string
}

const USER_AGENT_LIMIT = 512

const trimUserAgent = (value: string | null | undefined) => (value ? value.slice(0, USER_AGENT_LIMIT) : null)

/** A valid IP address, without the IPv4-mapped IPv6 prefix; anything else is null. */
export function normalizeIp(value: string | null | undefined): string | null {
  if (!value) return null
  const candidate = value.trim().replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '')
  return isIP(candidate) ? candidate : null
}

export interface TransportInfo {
  /** The TCP peer. */
  readonly socketIp: string | null | undefined
  readonly headers: Headers
  /** Peers whose X-Forwarded-For is believed (CUSTOS_TRUSTED_PROXIES). */
  readonly trustedProxies: ReadonlySet<string>
}

/**
 * The request's own client: the socket peer, or the nearest untrusted address
 * in X-Forwarded-For when the peer is a trusted proxy.
 */
export function transportClient({ socketIp, headers, trustedProxies }: TransportInfo): ClientInfo {
  let ip = normalizeIp(socketIp)
  if (ip && trustedProxies.has(ip)) {
    const hops = (headers.get('x-forwarded-for') ?? '').split(',').map((hop) => normalizeIp(hop))
    // Walk from the nearest hop outward, skipping our own proxies.
    for (let index = hops.length - 1; index >= 0; index--) {
      const hop = hops[index]
      if (!hop) break
      ip = hop
      if (!trustedProxies.has(hop)) break
    }
  }
  return { ip, userAgent: trimUserAgent(headers.get('user-agent')) }
}

/**
 * Applies X-Contember-Client-IP / -User-Agent for an API key trusted to forward
 * its own client's details; the transport's values move to forwarder*.
 */
export function withForwardedClient(transport: ClientInfo, headers: Headers): ClientInfo {
  const forwardedIp = normalizeIp(headers.get('x-contember-client-ip'))
  const forwardedUserAgent = headers.get('x-contember-client-user-agent')
  if (!forwardedIp && !forwardedUserAgent) return transport
  return {
    ip: forwardedIp ?? transport.ip,
    userAgent: forwardedUserAgent ? trimUserAgent(forwardedUserAgent) : transport.userAgent,
    ...(transport.ip ? { forwarderIp: transport.ip } : {}),
    ...(transport.userAgent ? { forwarderUserAgent: transport.userAgent } : {}),
  }
}
