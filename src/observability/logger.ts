import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs on stdout. Secrets never reach them: the redaction list covers every header and
 * field that can carry a credential or a signature.
 */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'herald' },
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["stripe-signature"]',
        'req.headers["webhook-signature"]',
        'req.headers["x-hub-signature-256"]',
        'req.headers["x-shopify-hmac-sha256"]',
        'req.headers["x-slack-signature"]',
        'secret',
        'secrets',
        'token',
      ],
      censor: '[redacted]',
    },
  });
}
