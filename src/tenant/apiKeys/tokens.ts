import { createHash, randomBytes } from 'node:crypto'

/** A fresh bearer token: 160 random bits, hex. */
export const generateToken = () => randomBytes(20).toString('hex')

/** Tokens are stored only as this hash. */
export const hashToken = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex')
