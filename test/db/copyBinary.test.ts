import { describe, expect, it } from 'vitest'
import { CopyBinaryRows, CopyBinaryValues } from '../../src/db/copyBinary.js'

/** What PostgreSQL sends for `COPY (text columns) TO STDOUT (FORMAT binary)`; null is NULL. */
function copyBinaryRows(rows: Array<Array<string | null>>, extension: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(8)
  header.writeUInt32BE(extension.length, 4)
  const encoded = rows.map((row) => {
    const count = Buffer.alloc(2)
    count.writeInt16BE(row.length, 0)
    const fields = row.map((value) => {
      const bytes = value === null ? Buffer.alloc(0) : Buffer.from(value, 'utf8')
      const length = Buffer.alloc(4)
      length.writeInt32BE(value === null ? -1 : bytes.length, 0)
      return Buffer.concat([length, bytes])
    })
    return Buffer.concat([count, ...fields])
  })
  return Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), header, extension, ...encoded, Buffer.from([0xff, 0xff])])
}

const copyBinary = (values: string[], extension?: Buffer) => copyBinaryRows(values.map((value) => [value]), extension)

const inChunks = (stream: Buffer, size: number) =>
  Array.from({ length: Math.ceil(stream.length / size) }, (_, index) => stream.subarray(index * size, (index + 1) * size))

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
      const chunks = inChunks(stream, size)
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

describe('CopyBinaryRows', () => {
  const rows = [
    ['1', 'ünïcödé ✓', null],
    ['', 'x'.repeat(70_000), '{}'],
    [null, null, 'last'],
  ]
  const stream = copyBinaryRows(rows, Buffer.from('ext'))

  function readRows(chunks: Buffer[]) {
    const reader = new CopyBinaryRows(3)
    const seen: Array<Array<string | null>> = []
    for (const chunk of chunks) {
      reader.take(chunk, (data) =>
        seen.push([0, 1, 2].map((field) => {
          const start = reader.starts[field]!
          const length = reader.lengths[field]!
          return length < 0 ? null : data.toString('utf8', start, start + length)
        })),
      )
    }
    return { rows: seen, complete: reader.complete }
  }

  it('hands over every row with its fields, NULLs included, whatever the chunk boundaries', () => {
    for (const size of [1, 3, 6, 19, 23, 4096, stream.length]) {
      expect(readRows(inChunks(stream, size)), `chunks of ${size}`).toEqual({ rows, complete: true })
    }
  })

  it('knows data cut off before the end marker is incomplete, and refuses another column count', () => {
    expect(readRows([stream.subarray(0, stream.length - 2)]).complete).toBe(false)
    expect(() => new CopyBinaryRows(2).take(stream, () => {})).toThrow('Expected 2 columns, got 3')
  })
})
