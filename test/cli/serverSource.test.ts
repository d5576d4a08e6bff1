import { type AddressInfo, type Socket, createServer } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { ServerSource, SourceError } from '../../src/cli/logSource.js'

/**
 * A loopback HTTP peer that answers every request with `answer` on a kept-alive connection, except
 * that it closes a connection, unanswered, when a second request arrives on it: what a server
 * whose idle timeout runs out just as the client reuses the connection looks like to the client.
 */
async function closingPeer(answer: string) {
  const requests: { socket: number; body: string }[] = []
  const sockets: Socket[] = []
  const server = createServer((socket) => {
    const socketNumber = sockets.push(socket)
    let answered = 0
    let buffered = ''
    socket.on('data', (chunk) => {
      buffered += String(chunk)
      const headerEnd = buffered.indexOf('\r\n\r\n')
      const length = Number(/content-length: (\d+)/i.exec(buffered)?.[1] ?? 0)
      if (headerEnd === -1 || buffered.length < headerEnd + 4 + length) return
      requests.push({ socket: socketNumber, body: buffered.slice(headerEnd + 4, headerEnd + 4 + length) })
      buffered = ''
      if (answered++ > 0) return void socket.destroy()
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(answer)}\r\nconnection: keep-alive\r\n\r\n${answer}`)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => {
      for (const socket of sockets) socket.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** fetch puts a connection back in its pool a little after the response is read; a request sent at once would take a new one. */
const pooled = () => new Promise((resolve) => setTimeout(resolve, 200))

describe('the command line talking to a server', () => {
  let peer: Awaited<ReturnType<typeof closingPeer>> | undefined
  afterEach(async () => {
    await peer?.close()
    peer = undefined
  })

  it('sends a read once more on a new connection when the server closes the kept-alive one as the read goes out', async () => {
    peer = await closingPeer(JSON.stringify({ data: { authLog: { nextCursor: null, entries: [] } } }))
    const source = new ServerSource(peer.url, 'a-token-of-twenty-characters')
    await source.page({}, 10, null)
    await pooled()
    await expect(source.page({}, 10, null)).resolves.toEqual({ nextCursor: null, entries: [] })
    // The second read reached the closing connection, then a new one.
    expect(peer.requests.map((request) => request.socket)).toEqual([1, 1, 2])
  })

  it('does not send a change twice: signing a checkpoint on a connection closed that way fails', async () => {
    const signed = { ok: true, error: null, result: { sequence: '1', hash: '00', createdAt: '2026-01-01T00:00:00.000Z', signature: '00', reason: 'on_demand', keyId: 'k' } }
    peer = await closingPeer(JSON.stringify({ data: { authLog: { nextCursor: null, entries: [] }, createAuthLogCheckpoint: signed } }))
    const source = new ServerSource(peer.url, 'a-token-of-twenty-characters')
    await source.page({}, 10, null)
    await pooled()
    const signing = source.signCheckpoint(1n)
    await expect(signing).rejects.toBeInstanceOf(SourceError)
    await expect(signing).rejects.toThrow(/other side closed/)
    expect(peer.requests.map((request) => request.socket)).toEqual([1, 1])
    expect(peer.requests[1]!.body).toContain('createAuthLogCheckpoint')
  })
})
