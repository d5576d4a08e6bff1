import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * Key material for the embedded default: read from `dataDir/name`, or created
 * there (mode 0600) on first start. Production passes keys through the environment.
 */
export async function loadOrCreateKeyFile(dataDir: string, name: string, create: () => string): Promise<string> {
  const path = join(dataDir, name)
  try {
    return (await readFile(path, 'utf8')).trim()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  // Only the owner's: the embedded database keeps its files here too (src/db/privateDir.ts).
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const key = create()
  // 'wx' refuses to overwrite a key another process wrote in the meantime.
  await writeFile(path, `${key}\n`, { flag: 'wx', mode: 0o600 }).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error
  })
  await chmod(path, 0o600)
  return (await readFile(path, 'utf8')).trim()
}
