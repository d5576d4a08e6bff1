/**
 * Reads the output of `COPY (...) TO STDOUT (FORMAT binary)` chunk by chunk: CopyBinaryValues for a
 * query of one column, CopyBinaryRows for whole rows of several.
 * Format: https://www.postgresql.org/docs/current/sql-copy.html ("Binary Format"): a 19-byte
 * header (signature, flags, extension length) and extension, then per row a 16-bit field count
 * and per field a 32-bit length and the bytes; a field count of -1 ends the data.
 */

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')
const HEADER_LENGTH = SIGNATURE.length + 8
const ROW_HEADER_LENGTH = 6
const EMPTY = Buffer.alloc(0)

/** Where the data starts after the header, undefined while `input` does not hold all of it. */
function afterHeader(input: Buffer): number | undefined {
  if (input.length < HEADER_LENGTH || input.length < HEADER_LENGTH + input.readUInt32BE(HEADER_LENGTH - 4)) return undefined
  if (!input.subarray(0, SIGNATURE.length).equals(SIGNATURE)) throw new Error('Not binary COPY data')
  return HEADER_LENGTH + input.readUInt32BE(HEADER_LENGTH - 4)
}

/** The column's values as they were sent, back to back: for text, its UTF-8 bytes. */

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
      const start = afterHeader(input)
      if (start === undefined) {
        this.pending = Buffer.from(input)
        return { data: EMPTY, rows: 0 }
      }
      at = start
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

/**
 * Whole rows of `columns` fields, each handed to a callback with where its fields start in the
 * buffer given and how long they are (-1: NULL); a row split across chunks is handed over once
 * the chunk that completes it arrives.
 */
export class CopyBinaryRows {
  private headerRead = false
  /** The start of a row that the next chunk continues. */
  private pending = EMPTY
  /** The end marker has been read: the data is complete. */
  complete = false
  /** The current row's fields: read them during the callback only, they are reused. */
  readonly starts: Int32Array
  readonly lengths: Int32Array

  constructor(readonly columns: number) {
    this.starts = new Int32Array(columns)
    this.lengths = new Int32Array(columns)
  }

  take(chunk: Buffer, onRow: (data: Buffer) => void): void {
    const input = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk
    let at = 0
    if (!this.headerRead) {
      const start = afterHeader(input)
      if (start === undefined) {
        this.pending = Buffer.from(input)
        return
      }
      at = start
      this.headerRead = true
    }
    while (!this.complete && input.length - at >= 2) {
      const fields = input.readInt16BE(at)
      if (fields === -1) {
        this.complete = true
        at += 2
        break
      }
      if (fields !== this.columns) throw new Error(`Expected ${this.columns} columns, got ${fields}`)
      const end = this.rowEnd(input, at + 2)
      if (end === undefined) break
      onRow(input)
      at = end
    }
    // The start of the next row, copied so the chunk itself can be freed.
    this.pending = at < input.length ? Buffer.from(input.subarray(at)) : EMPTY
  }

  /** Records the fields of the row whose first field header is at `at`; undefined while the row is incomplete. */
  private rowEnd(input: Buffer, at: number): number | undefined {
    for (let field = 0; field < this.columns; field++) {
      if (input.length - at < 4) return undefined
      const length = input.readInt32BE(at)
      at += 4
      this.starts[field] = at
      this.lengths[field] = length
      if (length > 0) at += length
    }
    return at <= input.length ? at : undefined
  }
}
