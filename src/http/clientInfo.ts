import { isIP } from 'node:net'
import { firstCodePoints } from '../audit/recorder.js'

/** Where a request came from, as recorded in the audit log. */
export interface ClientInfo {
  readonly ip: string | null
  readonly userAgent: string | null
  /** Set when a trusted caller forwarded its own client's address: the caller's own values. */
  readonly forwarderIp?: string
  readonly forwarderUserAgent?: string
}

const USER_AGENT_LIMIT = 512

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * A header value as the text the client meant. Node reads header bytes as Latin-1, one character
 * each, while clients send UTF-8 beyond ASCII: bytes that are valid UTF-8 are read as such, any
 * others keep their Latin-1 reading.
 */
function headerText(value: string): string {
  // Only bytes beyond ASCII read differently; a character beyond 0xFF came from no byte.
  if (!/[\x80-\xff]/.test(value) || /[^\x00-\xff]/.test(value)) return value
  try {
    return utf8.decode(Buffer.from(value, 'latin1'))
  } catch {
    return value
  }
}

/** The user agent as sent, cut to its first USER_AGENT_LIMIT characters. */
function trimUserAgent(value: string | null | undefined): string | null {
  if (!value) return null
  return firstCodePoints(headerText(value), USER_AGENT_LIMIT)
}

/**
 * A valid IP address: IPv4, an IPv4-mapped IPv6 address as the IPv4 address it maps (in any
 * spelling), other IPv6 in canonical form and without a zone id (a link-local peer's
 * `fe80::1%eth0`: Node takes one, PostgreSQL's inet does not, and it names only our own
 * interface); anything else is null.
 */
export function normalizeIp(value: string | null | undefined): string | null {
  if (!value) return null
  const candidate = value.trim()
  const version = isIP(candidate)
  if (version !== 6) return version === 4 ? candidate : null
  // The URL parser writes an IPv6 address in its one canonical form (lower case, zeros compressed,
  // hex only), so every spelling of an IPv4-mapped address (::ffff:10.0.0.1, ::FFFF:a00:1,
  // 0:0:0:0:0:ffff:10.0.0.1) reads ::ffff:hhhh:hhhh.
  const canonical = new URL(`http://[${candidate.replace(/%.*$/, '')}]`).hostname.slice(1, -1)
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical)
  if (!mapped) return canonical
  const [high, low] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)]
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.')
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
 * its own client's details; the transport's values move to forwarder*. Once a
 * request forwards either, the client is the forwarded one: what it leaves out
 * (or sends malformed) is unknown, not the forwarder's own address or agent.
 */
export function withForwardedClient(transport: ClientInfo, headers: Headers): ClientInfo {
  const forwardedIp = normalizeIp(headers.get('x-contember-client-ip'))
  const forwardedUserAgent = trimUserAgent(headers.get('x-contember-client-user-agent'))
  if (!forwardedIp && !forwardedUserAgent) return transport
  return {
    ip: forwardedIp,
    userAgent: forwardedUserAgent,
    ...(transport.ip ? { forwarderIp: transport.ip } : {}),
    ...(transport.userAgent ? { forwarderUserAgent: transport.userAgent } : {}),
  }
}
