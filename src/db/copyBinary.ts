/**
 * Reads the output of `COPY (a query of one column) TO STDOUT (FORMAT binary)`, chunk by chunk,
 * and gives back the column's values as they were sent, back to back: for text, its UTF-8 bytes.
 * Format: https://www.postgresql.org/docs/current/sql-copy.html ("Binary Format"): a 19-byte
 * header (signature, flags, extension length) and extension, then per row a 16-bit field count
 * and per field a 32-bit length and the bytes; a field count of -1 ends the data.
 */

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')
const HEADER_LENGTH = SIGNATURE.length + 8
const ROW_HEADER_LENGTH = 6
const EMPTY = Buffer.alloc(0)

export class CopyBinaryValues {
  private headerRead = false
  /** Bytes of the current value not seen yet. */
  private valueLeft = 0
  /** The start of a header that the next chunk completes. */
  private pending = EMPTY
  /** The end marker has been read: the data is complete. */
  complete = false

  /** The value bytes in `chunk`, and how many rows ended in it. */
  take(chunk: Buffer): { data: Buffer; rows: number } {
    const input = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk
    const data = Buffer.allocUnsafe(input.length)
    let written = 0
    let rows = 0
    let at = 0
    if (!this.headerRead) {
      if (input.length < HEADER_LENGTH || input.length < HEADER_LENGTH + input.readUInt32BE(HEADER_LENGTH - 4)) {
        this.pending = Buffer.from(input)
        return { data: EMPTY, rows: 0 }
      }
      if (!input.subarray(0, SIGNATURE.length).equals(SIGNATURE)) throw new Error('Not binary COPY data')
      at = HEADER_LENGTH + input.readUInt32BE(HEADER_LENGTH - 4)
      this.headerRead = true
    }
    while (at < input.length && !this.complete) {
      if (this.valueLeft > 0) {
        const end = Math.min(input.length, at + this.valueLeft)
        written += input.copy(data, written, at, end)
        this.valueLeft -= end - at
        at = end
        if (this.valueLeft === 0) rows++
        continue
      }
      if (input.length - at < 2) break
      const fields = input.readInt16BE(at)
      if (fields === -1) {
        this.complete = true
        at += 2
        break
      }
      if (fields !== 1) throw new Error(`Expected one column, got ${fields}`)
      if (input.length - at < ROW_HEADER_LENGTH) break
      const length = input.readInt32BE(at + 2)
      if (length < 0) throw new Error('Unexpected NULL value')
      at += ROW_HEADER_LENGTH
      this.valueLeft = length
      if (length === 0) rows++
    }
    // At most a few header bytes remain; copied, so the chunk itself can be freed.
    this.pending = at < input.length ? Buffer.from(input.subarray(at)) : EMPTY
    return { data: data.subarray(0, written), rows }
  }
}
