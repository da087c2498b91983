/**
 * The one registry of error codes. Every error a client can see comes from here: the HTTP API
 * answers `{ "error": { "code", "message" } }` with `status`, WebSocket `error` frames carry the
 * same `code`. `docs/errors.md` lists the same table; a test keeps the two in step.
 */
export const ERRORS = {
  BAD_REQUEST: { status: 400, message: 'The request is malformed.' },
  JSON_INVALID: { status: 400, message: 'The body is not valid JSON.' },
  BODY_INVALID: { status: 400, message: 'The body does not have the expected shape.' },
  CHANNEL_INVALID: { status: 400, message: 'The channel name is invalid.' },
  CHANNEL_IS_PATTERN: { status: 400, message: 'Events are published to a channel name, not a pattern.' },
  TYPE_INVALID: { status: 400, message: 'The event type is invalid.' },
  IDEMPOTENCY_KEY_INVALID: { status: 400, message: 'The idempotency key is invalid.' },
  DATA_MISSING: { status: 400, message: 'The event has no data.' },
  POSITION_INVALID: { status: 400, message: 'The event id is not one Herald issued.' },
  LIMIT_INVALID: { status: 400, message: 'The limit is out of range.' },
  BATCH_EMPTY: { status: 400, message: 'A batch needs at least one event.' },
  BATCH_TOO_LARGE: { status: 400, message: 'The batch has too many events.' },
  UNAUTHORIZED: { status: 401, message: 'Credentials are missing or invalid.' },
  FORBIDDEN: { status: 403, message: 'The credentials do not allow this.' },
  LOOPBACK_ONLY: {
    status: 403,
    message: 'No auth is configured, so this API answers loopback clients only.',
  },
  PUBLISH_FORBIDDEN: { status: 403, message: 'Publishing to this channel is not allowed here.' },
  NOT_FOUND: { status: 404, message: 'Nothing is here.' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'The method is not allowed on this route.' },
  BODY_TOO_LARGE: { status: 413, message: 'The body is larger than the limit.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The content type is not supported.' },
  TOO_MANY_SUBSCRIPTIONS: { status: 400, message: 'The connection has too many subscriptions.' },
  NOT_SUBSCRIBED: { status: 400, message: 'The connection is not subscribed to this channel.' },
  ALREADY_SUBSCRIBED: { status: 400, message: 'The connection is already subscribed to this channel.' },
  OP_UNKNOWN: { status: 400, message: 'The op is unknown.' },
  FRAME_INVALID: { status: 400, message: 'The frame is not a JSON object with an op.' },
  BINARY_UNSUPPORTED: { status: 400, message: 'Binary frames are not supported; send JSON text.' },
  URL_INVALID: { status: 400, message: 'The URL is not an absolute http or https URL.' },
  TARGET_FORBIDDEN: {
    status: 400,
    message: 'The target is a loopback, private, link-local or metadata address (SSRF guard).',
  },
  ENDPOINT_NOT_FOUND: { status: 404, message: 'No endpoint has this id.' },
  DELIVERY_NOT_FOUND: { status: 404, message: 'No delivery has this id.' },
  SHUTTING_DOWN: { status: 503, message: 'Herald is shutting down.' },
  STORE_UNAVAILABLE: { status: 503, message: 'The event store is unavailable.' },
  INTERNAL: { status: 500, message: 'Something went wrong inside Herald.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** An error meant for a client: it carries a registry code and a message safe to show. */
export class HeraldError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message?: string) {
    super(message ?? ERRORS[code].message);
    this.name = 'HeraldError';
    this.code = code;
    this.status = ERRORS[code].status;
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** A component was used after its `close()`. */
export class ClosedError extends HeraldError {
  constructor(what: string) {
    super('SHUTTING_DOWN', `${what} is closed.`);
    this.name = 'ClosedError';
  }
}
