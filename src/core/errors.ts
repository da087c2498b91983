import type { ErrorCode } from './protocol.js';

export type { ErrorCode };

/**
 * The one registry of error codes (their names are in the protocol, src/core/protocol.ts). Every error a client can see comes from here: the HTTP API
 * answers `{ "error": { "code", "message" } }` with `status`, WebSocket `error` frames carry the
 * same `code`. `docs/errors.md` lists the same table; a test keeps the two in step.
 */
export const ERRORS = {
  BAD_REQUEST: { status: 400, message: 'The request is malformed.' },
  JSON_INVALID: { status: 400, message: 'The body is not valid JSON.' },
  JSON_TOO_DEEP: { status: 400, message: 'The JSON nests arrays and objects deeper than the limit.' },
  BODY_INVALID: { status: 400, message: 'The body does not have the expected shape.' },
  CHANNEL_INVALID: { status: 400, message: 'The channel name is invalid.' },
  CHANNEL_IS_PATTERN: { status: 400, message: 'Events are published to a channel name, not a pattern.' },
  TYPE_INVALID: { status: 400, message: 'The event type is invalid.' },
  IDEMPOTENCY_KEY_INVALID: { status: 400, message: 'The idempotency key is invalid.' },
  DATA_MISSING: { status: 400, message: 'The event has no data.' },
  POSITION_INVALID: { status: 400, message: 'The event id is not one Herald issued.' },
  EPOCH_CHANGED: {
    status: 410,
    message: 'The event id is from a log that was lost or rebuilt; read again from the start (no position).',
  },
  LIMIT_INVALID: { status: 400, message: 'The limit is out of range.' },
  BATCH_EMPTY: { status: 400, message: 'A batch needs at least one event.' },
  BATCH_TOO_LARGE: { status: 400, message: 'The batch has too many events.' },
  UNAUTHORIZED: { status: 401, message: 'Credentials are missing or invalid.' },
  FORBIDDEN: { status: 403, message: 'The credentials do not allow this.' },
  LOOPBACK_ONLY: {
    status: 403,
    message: 'No auth is configured, so this API answers loopback clients only.',
  },
  HOST_FORBIDDEN: {
    status: 403,
    message: 'No auth is configured, so this API answers requests for localhost or a loopback address only (DNS rebinding).',
  },
  PUBLISH_FORBIDDEN: { status: 403, message: 'Publishing to this channel is not allowed here.' },
  TOKEN_INVALID: {
    status: 401,
    message: 'The token is malformed, unsigned, signed with another key or algorithm, or tampered with.',
  },
  TOKEN_EXPIRED: { status: 401, message: 'The token has expired (`exp`).' },
  TOKEN_NOT_YET_VALID: { status: 401, message: 'The token is not valid yet (`nbf`).' },
  TOKEN_AUDIENCE_INVALID: { status: 401, message: 'The token is for another audience (`aud`).' },
  TOKEN_ISSUER_INVALID: { status: 401, message: 'The token is from another issuer (`iss`).' },
  TOKEN_CLAIMS_INVALID: {
    status: 401,
    message: 'The `herald` or `sub` claim of the token has the wrong shape.',
  },
  API_KEY_INVALID: { status: 401, message: 'The API key is not one Herald knows.' },
  API_KEY_NOT_IN_HEADER: {
    status: 401,
    message: 'An API key is accepted in the Authorization header only; ?token= and the cookie take JWTs.',
  },
  SUBSCRIBE_FORBIDDEN: { status: 403, message: 'The credentials do not allow subscribing to this channel.' },
  ORIGIN_FORBIDDEN: { status: 403, message: 'The Origin is not one of cors.origins.' },
  PRESENCE_NOT_ENABLED: {
    status: 404,
    message: 'Presence is not enabled for this channel (presence.channels).',
  },
  REQUEST_TIMEOUT: { status: 408, message: 'The request was not sent in time.' },
  RATE_LIMITED: { status: 429, message: 'Too many requests; retry after the Retry-After delay.' },
  TOO_MANY_CONNECTIONS: {
    status: 429,
    message: 'Too many open connections for this client address or identity.',
  },
  HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are larger than the limit.' },
  AUTH_UNAVAILABLE: { status: 503, message: 'The keys to check the token could not be fetched (JWKS).' },
  NOT_FOUND: { status: 404, message: 'Nothing is here.' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'The method is not allowed on this route.' },
  BODY_TOO_LARGE: { status: 413, message: 'The body is larger than the limit.' },
  URI_TOO_LONG: { status: 414, message: 'A path segment of the URL is longer than the limit.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The content type is not supported.' },
  SOURCE_UNKNOWN: { status: 404, message: 'No inbound webhook source has this name.' },
  SIGNATURE_MISSING: { status: 400, message: 'The webhook signature header is missing or malformed.' },
  SIGNATURE_INVALID: { status: 401, message: 'The webhook signature does not match any configured secret.' },
  TIMESTAMP_OUT_OF_TOLERANCE: { status: 401, message: 'The signed timestamp is outside the tolerance (a possible replay).' },
  WEBHOOK_PAYLOAD_INVALID: { status: 400, message: 'The webhook payload lacks a field its provider always sends.' },
  CERTIFICATE_UNAVAILABLE: { status: 503, message: "The provider's signing certificate could not be fetched; retry later." },
  RECEIPT_NOT_FOUND: { status: 404, message: 'No inbound receipt has this id (or it was pruned).' },
  RECEIPT_NOT_REPLAYABLE: { status: 409, message: 'Only accepted arrivals, which keep their payload, can be replayed.' },
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
  CONNECTION_NOT_FOUND: { status: 404, message: 'No connection to this node has this id.' },
  RECORD_NOT_UTF8: { status: 422, message: 'The Kafka record value is not valid UTF-8 text.' },
  RECORD_UNMAPPABLE: { status: 422, message: 'The Kafka record does not fill its channel or type template.' },
  SHUTTING_DOWN: { status: 503, message: 'Herald is shutting down.' },
  STORE_UNAVAILABLE: { status: 503, message: 'The event store is unavailable.' },
  BROKER_UNAVAILABLE: {
    status: 503,
    message: 'The broker that tells other nodes about new events is unavailable; nothing was stored, retry later.',
  },
  BACKEND_UNAVAILABLE: {
    status: 503,
    message: 'The shared backend (Redis) is unreachable; retry later, with the same idempotency key.',
  },
  INTERNAL: { status: 500, message: 'Something went wrong inside Herald.' },
} as const satisfies Record<ErrorCode, { status: number; message: string }>;

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

/**
 * Herald cannot start for a reason the operator can fix (a database it cannot open, a certificate
 * it cannot read). The message is one line that names the config key or file and the cause; the
 * CLI prints it without a stack.
 */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}
