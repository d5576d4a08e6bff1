// The thread that checks slices of the chain for verifyAuthLog (./integrity.ts). Threads do not
// inherit the main thread's TypeScript loader, so it is registered here first (as in bin/custos.js).
import { register } from 'tsx/esm/api'

register()
await import('./verifyWorkerMain.ts')
