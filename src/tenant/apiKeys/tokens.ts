import { createHash, randomBytes } from 'node:crypto'
import { InvalidInputError } from '../invalidInput.js'

/** A fresh bearer token: 160 random bits, hex. */
export const generateToken = () => randomBytes(20).toString('hex')

/** Tokens are stored only as this hash. */
export const hashToken = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex')

/** A hash a caller computed for its own token must be written as hashToken writes one: lowercase hex sha256. */
export const isTokenHash = (text: string) => /^[0-9a-f]{64}$/.test(text)

/** A caller-computed token hash, refused as bad input naming `argument` unless it isTokenHash. */
export function requireTokenHash(tokenHash: string, argument: string): void {
  if (!isTokenHash(tokenHash)) throw new InvalidInputError(`${argument} must be a lowercase hex sha256.`, argument)
}
