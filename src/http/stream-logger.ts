import type { FastifyBaseLogger } from 'fastify';

/**
 * The request logger of a long-lived stream (SSE): the server's own logger, not a child with the
 * request id bound to it. A child logger per request is a Pino instance and its bindings, kept
 * for as long as the connection lives, which for 10,000 idle streams is memory spent on a label.
 */
export function streamLogger(logger: FastifyBaseLogger): FastifyBaseLogger {
  return logger;
}
