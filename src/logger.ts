import pino from 'pino'

/** JSON logs on stdout. Secrets never reach them: whatever might carry one is redacted by path. */
export function createLogger(level: string, destination?: pino.DestinationStream) {
  return pino(
    {
      level,
      base: { service: 'custos' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['*.authorization', '*.password', '*.token', '*.otpToken', '*.secret', 'req.headers', 'variables'],
        censor: '[redacted]',
      },
    },
    destination,
  )
}
