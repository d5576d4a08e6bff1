import { randomUUID } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ExportFile, ExportFileError } from '../../src/audit/exportFile.js'

/**
 * ExportFile reads an export back in chain order without holding its entries: these check the
 * order, the range selection and the re-reading from the file, over files larger than one read
 * block (1 MiB), in either direction and shuffled, as JSONL and as CSV.
 */

let scratch: string
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'custos-export-file-'))
})
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true })
})

interface Line {
  id: string
  sequence: number
  userAgent: string
}

/** Entries 1..count, with user agents long enough that the file spans several read blocks. */
const lines = (count: number): Line[] =>
  Array.from({ length: count }, (_, index) => ({ id: randomUUID(), sequence: index + 1, userAgent: `agent ${index + 1} ${'x'.repeat(400)}` }))

const jsonl = (entries: Line[]) =>
  entries
    .map(
      ({ id, sequence, userAgent }) =>
        `{"id":"${id}","createdAt":"2026-01-01T00:00:00.000Z","type":"login","success":true,"invokedByIdentityId":null,"personId":null,` +
        `"targetPersonId":null,"personInputIdentifier":null,"errorCode":null,"clientIp":null,"userAgent":"${userAgent}","metadata":{},` +
        `"eventData":{},"sequence":${sequence},"hash":"${'ab'.repeat(32)}"}\n`,
    )
    .join('')

const CSV_HEADER = 'id,createdAt,type,success,invokedByIdentityId,personId,targetPersonId,personInputIdentifier,errorCode,clientIp,userAgent,metadata,eventData,sequence,hash\r\n'
// A quoted line break in every record: records and lines differ.
const csv = (entries: Line[]) =>
  CSV_HEADER +
  entries.map(({ id, sequence, userAgent }) => `${id},2026-01-01T00:00:00.000Z,login,true,,,,,,,"${userAgent}\r\nsecond line",{},{},${sequence},${'ab'.repeat(32)}\r\n`).join('')

async function opened(name: string, text: string): Promise<ExportFile> {
  const path = join(scratch, name)
  await writeFile(path, text)
  return ExportFile.open(path)
}

function shuffled<T>(items: T[]): T[] {
  const copy = [...items]
  for (let index = copy.length - 1; index > 0; index--) {
    const other = Math.floor(Math.random() * (index + 1))
    ;[copy[index], copy[other]] = [copy[other]!, copy[index]!]
  }
  return copy
}

const all = (file: { length: number; entryAt(index: number): { id: string; sequence: unknown; userAgent: string | null } }) =>
  Array.from({ length: file.length }, (_, index) => file.entryAt(index))

describe('ExportFile', () => {
  const entries = lines(6000)
  const orders: [string, Line[]][] = [
    ['newest first, as exported', [...entries].reverse()],
    ['oldest first', entries],
    ['shuffled', shuffled(entries)],
  ]

  for (const [order, written] of orders) {
    for (const [format, render] of [
      ['jsonl', jsonl],
      ['csv', csv],
    ] as const) {
      it(`gives every entry of a ${format} file in chain order, read back from the file (${order})`, async () => {
        const file = await opened(`${format}-${order}.${format}`, render(written))
        try {
          expect(file.length).toBe(entries.length)
          const read = all(file)
          expect(read.map((entry) => entry.id)).toEqual(entries.map((entry) => entry.id))
          expect(read.map((entry) => BigInt(entry.sequence as bigint))).toEqual(entries.map((entry) => BigInt(entry.sequence)))
          expect(read.at(-1)!.userAgent).toBe(format === 'csv' ? `${entries.at(-1)!.userAgent}\r\nsecond line` : entries.at(-1)!.userAgent)
        } finally {
          await file.close()
        }
      })
    }
  }

  it('selects the entries after one sequence and up to another, by bisection', async () => {
    const file = await opened('select.jsonl', jsonl([...entries].reverse()))
    try {
      const selected = file.select(100n, 250n)
      expect(selected.length).toBe(150)
      expect([selected.sequenceAt(0), selected.sequenceAt(149)]).toEqual([101n, 250n])
      expect(selected.entryAt(0).id).toBe(entries[100]!.id)
      expect(file.select(5990n, undefined).length).toBe(10)
      expect(file.select(6000n, undefined).length).toBe(0)
      expect(file.select(300n, 200n).length).toBe(0)
      expect(selected.select(200n, undefined).length).toBe(50)
    } finally {
      await file.close()
    }
  })

  it('orders two entries claiming one sequence by id, as the database does', async () => {
    const claimed = [
      { id: 'ffffffff-0000-4000-8000-000000000000', sequence: 2, userAgent: 'later id' },
      { id: '00000000-0000-4000-8000-000000000000', sequence: 2, userAgent: 'earlier id' },
      { id: randomUUID(), sequence: 1, userAgent: 'first' },
    ]
    const file = await opened('forged.jsonl', jsonl(claimed))
    try {
      expect(all(file).map((entry) => entry.userAgent)).toEqual(['first', 'earlier id', 'later id'])
    } finally {
      await file.close()
    }
  })

  it('names the line of a record that is not an entry, and of a sequence no entry can have', async () => {
    const numberId = jsonl(lines(1)).replace(/"id":"[^"]+"/, '"id":1')
    await expect(opened('broken.jsonl', `${jsonl(lines(2))}${numberId}`)).rejects.toThrow(new ExportFileError('line 3: id is not a string'))
    const beyond = jsonl(lines(1)).replace('"sequence":1', `"sequence":${2n ** 63n}`)
    await expect(opened('beyond.jsonl', beyond)).rejects.toThrow(new ExportFileError('line 1: sequence is larger than any entry can have'))
  })

  it('refuses text the chain does not prove: a member more, a repeated key, members out of order, a header not an export\'s', async () => {
    const [first, second] = jsonl(lines(2)).split('\n') as [string, string]
    const keys = 'line 2: the keys are not those of an export entry, in their order: id, createdAt, type, success, invokedByIdentityId, personId, targetPersonId, personInputIdentifier, errorCode, clientIp, userAgent, metadata, eventData, sequence, hash'
    const refusals: [string, string][] = [
      [second.replace('"userAgent":', '"note":"approved","userAgent":'), keys],
      [second.replace(/}$/, ',"note":"approved"}'), keys],
      [second.replace('{"id":', '{"type":"login","id":'), 'line 2: the key type appears twice'],
      [second.replace('"userAgent":', '"userAgent":"forged","userAgent":'), 'line 2: the key userAgent appears twice'],
      [second.replace(/"type":"login","success":true/, '"success":true,"type":"login"'), keys],
    ]
    for (const [changed, message] of refusals) {
      await expect(opened('changed.jsonl', `${first}\n${changed}\n`), changed).rejects.toThrow(new ExportFileError(message))
    }
    const extraColumn = csv(lines(1)).replace('hash\r\n', 'hash,note\r\n').replace(/\r\n$/, ',approved\r\n')
    await expect(opened('extra.csv', extraColumn)).rejects.toThrow(new ExportFileError(`line 1: the CSV header is not an export's: ${CSV_HEADER.trim()}`))
  })
})
