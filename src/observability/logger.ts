import { pino, type Logger } from 'pino';
import { redactCredentials, redactingSerializers } from './redact.js';

export type { Logger };

/** An error as pino logs it, with credentials cut out of its message and stack (they may quote a URL). */
function errWithoutCredentials(err: unknown): unknown {
  const o = pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
  if (typeof o.message === 'string') o.message = redactCredentials(o.message);
  if (typeof o.stack === 'string') o.stack = redactCredentials(o.stack);
  return o;
}

/**
 * JSON logs on stdout. Secrets never reach them: the redaction list covers every header and
 * field that can carry a credential or a signature, the serializers cut credential query
 * parameters (`?token=`) out of every URL, request and error, and the hook out of messages.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'herald' },
    serializers: { ...redactingSerializers, err: errWithoutCredentials },
    hooks: {
      logMethod(args, method) {
        for (let i = 0; i < args.length; i++) {
          const a: unknown = args[i];
          if (typeof a === 'string') args[i] = redactCredentials(a);
        }
        return method.apply(this, args as Parameters<typeof method>);
      },
    },
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["stripe-signature"]',
        'req.headers["webhook-signature"]',
        'req.headers["x-hub-signature-256"]',
        'req.headers["x-shopify-hmac-sha256"]',
        'req.headers["x-slack-signature"]',
        'req.headers["x-api-key"]',
        'headers.authorization',
        'headers.cookie',
        'secret',
        'secrets',
        'token',
      ],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
