import { describe, expect, it } from 'vitest'
import { CopyBinaryValues } from '../../src/db/copyBinary.js'

/** What PostgreSQL sends for `COPY (one text column) TO STDOUT (FORMAT binary)`. */
function copyBinary(values: string[], extension = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(8)
  header.writeUInt32BE(extension.length, 4)
  const rows = values.map((value) => {
    const bytes = Buffer.from(value, 'utf8')
    const rowHeader = Buffer.alloc(6)
    rowHeader.writeInt16BE(1, 0)
    rowHeader.writeInt32BE(bytes.length, 2)
    return Buffer.concat([rowHeader, bytes])
  })
  return Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), header, extension, ...rows, Buffer.from([0xff, 0xff])])
}

function read(chunks: Buffer[]) {
  const reader = new CopyBinaryValues()
  let rows = 0
  const data = chunks.map((chunk) => {
    const taken = reader.take(chunk)
    rows += taken.rows
    return taken.data
  })
  return { text: Buffer.concat(data).toString('utf8'), rows, complete: reader.complete }
}

describe('CopyBinaryValues', () => {
  const values = ['{"a":1}\n', '', 'ünïcödé ✓ "q"\r\n', 'x'.repeat(70_000)]
  const stream = copyBinary(values, Buffer.from('ext'))

  it('gives back the values back to back, and counts the rows', () => {
    expect(read([stream])).toEqual({ text: values.join(''), rows: values.length, complete: true })
  })

  it('whatever the chunk boundaries, down to one byte at a time', () => {
    for (const size of [1, 2, 5, 7, 19, 24, 4096]) {
      const chunks = Array.from({ length: Math.ceil(stream.length / size) }, (_, index) => stream.subarray(index * size, (index + 1) * size))
      expect(read(chunks), `chunks of ${size}`).toEqual({ text: values.join(''), rows: values.length, complete: true })
    }
  })

  it('knows data cut off before the end marker is incomplete', () => {
    expect(read([stream.subarray(0, stream.length - 2)]).complete).toBe(false)
  })

  it('refuses what is not binary COPY data of one column', () => {
    expect(() => new CopyBinaryValues().take(Buffer.alloc(40))).toThrow('Not binary COPY data')
    const twoColumns = Buffer.from(stream)
    twoColumns.writeInt16BE(2, 19 + 3)
    expect(() => new CopyBinaryValues().take(twoColumns)).toThrow('Expected one column, got 2')
  })
})
