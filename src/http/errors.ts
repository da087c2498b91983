import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { HeraldError } from '../core/errors.js';
import { JSON_MAX_DEPTH, jsonDepthExceeds } from '../core/json-depth.js';
import type { Logger } from '../observability/logger.js';

/** Maps fastify's own errors onto the registry, so every error body has the same shape. */
function fromFastify(err: FastifyError): HeraldError | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HeraldError('BODY_TOO_LARGE', err.message);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new HeraldError('UNSUPPORTED_MEDIA_TYPE', err.message);
    // The router's own answers (a path that does not decode, a path parameter past
    // maxParamLength) come through `frameworkErrors`, else fastify writes its own body shape.
    case 'FST_ERR_BAD_URL':
      return new HeraldError('BAD_REQUEST', 'the URL path is not valid percent-encoded UTF-8');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new HeraldError('URI_TOO_LONG', 'a path parameter is longer than the router allows (100 characters)');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new HeraldError('JSON_INVALID', err.message);
    default:
      if (err.statusCode === 400) return new HeraldError('BAD_REQUEST', err.message);
      if (err.statusCode === 413) return new HeraldError('BODY_TOO_LARGE', err.message);
      return undefined;
  }
}

export function sendError(reply: FastifyReply, err: HeraldError): void {
  if (err.code === 'METHOD_NOT_ALLOWED') reply.header('allow', 'POST');
  // RFC 9110 10.2.3: a 429 says when to come back; RFC 6750 3: a 401 names the scheme it wants.
  const retryAfter = (err as { retryAfterSeconds?: unknown }).retryAfterSeconds;
  if (typeof retryAfter === 'number') reply.header('retry-after', String(retryAfter));
  if (err.status === 401) reply.header('www-authenticate', 'Bearer realm="herald"');
  void reply.code(err.status).send({ error: err.toJSON() });
}

/** The error handler: registry errors go out as they are; anything else is a logged 500. */
export function errorHandler(log: Logger) {
  return (err: FastifyError, req: FastifyRequest, reply: FastifyReply): void => {
    const known = err instanceof HeraldError ? err : fromFastify(err);
    if (known) {
      sendError(reply, known);
      return;
    }
    // The logger's `url` serializer cuts credential parameters (`?token=`) out of the URL.
    log.error({ err, url: req.url, method: req.method }, 'request failed');
    sendError(reply, new HeraldError('INTERNAL'));
  };
}

/** A list's `?limit=`: `fallback` when absent, else an integer from 1 to `max` (400 LIMIT_INVALID). */
export function parseLimit(value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 1 || limit > max) {
    throw new HeraldError('LIMIT_INVALID', `limit is an integer from 1 to ${max}`);
  }
  return limit;
}

/** Parses a raw body as JSON, or throws JSON_INVALID (JSON_TOO_DEEP past JSON_MAX_DEPTH). */
export function parseJson(body: unknown): unknown {
  if (!Buffer.isBuffer(body) || body.length === 0) {
    throw new HeraldError('JSON_INVALID', 'the body is empty; send JSON');
  }
  if (jsonDepthExceeds(body)) {
    throw new HeraldError('JSON_TOO_DEEP', `the body nests arrays and objects deeper than ${JSON_MAX_DEPTH} levels`);
  }
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw new HeraldError('JSON_INVALID', `the body is not valid JSON: ${(err as Error).message}`);
  }
}
