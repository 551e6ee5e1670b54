import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs for the servers (operator, webhook). Tokens and keys are redacted wherever they appear in
 * logged objects; messages never interpolate secrets in the first place.
 */
export function createLogger(options: {
  level?: string;
  name: string;
  destination?: NodeJS.WritableStream;
}): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? 'info',
      base: { component: options.name },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'token',
          '*.token',
          'authorization',
          '*.authorization',
          'headers.authorization',
          '*.apiKey',
          'secret',
          '*.secret',
        ],
        censor: '[redacted]',
      },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? process.stdout,
  );
}

/** An error as log fields: message, HTTP status when there is one, and the stack at debug level. */
export function errorFields(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { err: String(error) };
  const status =
    (error as { code?: unknown; statusCode?: unknown }).code ??
    (error as { statusCode?: unknown }).statusCode;
  return { err: error.message.split('\n')[0], ...(typeof status === 'number' ? { status } : {}) };
}
