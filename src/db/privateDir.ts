import { chmod, mkdir, stat } from 'node:fs/promises'
import { ConfigError } from '../config.js'

/**
 * Makes `dir` the owner's alone (mode 0700), creating it so or closing an existing one, as
 * PostgreSQL insists for its data directory: PGlite writes its files readable and writable by
 * everyone (0666, whatever the umask), and only the directory keeps other local users out.
 * Returns the mode it had when it had to be closed. A directory this process cannot close (owned
 * by another user, a read-only mount) is refused rather than used open, and so is one all users
 * share (/tmp).
 */
export async function makePrivateDir(dir: string): Promise<number | undefined> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const { mode: fullMode } = await stat(dir)
  const mode = fullMode & 0o777
  if ((mode & 0o077) === 0) return undefined
  // The sticky bit marks a directory every user shares (/tmp): closing it would lock them all out.
  if (fullMode & 0o1000) {
    throw new ConfigError(`Invalid configuration:\n  CUSTOS_DATA_DIR: ${dir} is shared by all users (sticky bit): give Custos a directory of its own`)
  }
  await chmod(dir, 0o700).catch((error: NodeJS.ErrnoException) => {
    throw new ConfigError(
      `Invalid configuration:\n  CUSTOS_DATA_DIR: ${dir} is open to other users (mode ${octal(mode)}) and could not be closed (${error.code}): ` +
        'run Custos as its owner, or `chmod 700` it',
    )
  })
  return mode
}

export const octal = (mode: number) => `0${mode.toString(8)}`
