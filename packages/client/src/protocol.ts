/**
 * Herald's client protocol, defined once: the WebSocket frames of `GET /v1/ws`, the SSE event
 * names of `GET /v1/stream`, the WebSocket close codes and the error codes. The server
 * (src/core/protocol.ts re-exports this file) and the client SDK both import it, so neither can
 * drift from the other. It imports nothing and touches no platform API: it runs in Node and in a
 * browser alike, and everything here but the constants is erased at build time.
 */

/** Every error code a client can see, in HTTP bodies and WebSocket `error` frames alike. */
export const ERROR_CODES = [
  'BAD_REQUEST', 'JSON_INVALID', 'JSON_TOO_DEEP', 'BODY_INVALID', 'CHANNEL_INVALID', 'CHANNEL_IS_PATTERN',
  'TYPE_INVALID', 'IDEMPOTENCY_KEY_INVALID', 'DATA_MISSING', 'POSITION_INVALID', 'EPOCH_CHANGED', 'LIMIT_INVALID',
  'BATCH_EMPTY', 'BATCH_TOO_LARGE', 'UNAUTHORIZED', 'FORBIDDEN', 'LOOPBACK_ONLY', 'HOST_FORBIDDEN',
  'PUBLISH_FORBIDDEN', 'TOKEN_INVALID', 'TOKEN_EXPIRED', 'TOKEN_NOT_YET_VALID', 'TOKEN_AUDIENCE_INVALID',
  'TOKEN_ISSUER_INVALID', 'TOKEN_CLAIMS_INVALID', 'API_KEY_INVALID', 'API_KEY_NOT_IN_HEADER', 'SUBSCRIBE_FORBIDDEN',
  'ORIGIN_FORBIDDEN', 'PRESENCE_NOT_ENABLED', 'REQUEST_TIMEOUT', 'RATE_LIMITED', 'TOO_MANY_CONNECTIONS',
  'HEADERS_TOO_LARGE', 'AUTH_UNAVAILABLE', 'NOT_FOUND', 'METHOD_NOT_ALLOWED', 'BODY_TOO_LARGE', 'URI_TOO_LONG',
  'UNSUPPORTED_MEDIA_TYPE', 'SOURCE_UNKNOWN', 'SIGNATURE_MISSING', 'SIGNATURE_INVALID', 'TIMESTAMP_OUT_OF_TOLERANCE',
  'WEBHOOK_PAYLOAD_INVALID', 'CERTIFICATE_UNAVAILABLE', 'RECEIPT_NOT_FOUND', 'RECEIPT_NOT_REPLAYABLE',
  'TOO_MANY_SUBSCRIPTIONS', 'NOT_SUBSCRIBED', 'ALREADY_SUBSCRIBED', 'OP_UNKNOWN', 'FRAME_INVALID',
  'BINARY_UNSUPPORTED', 'URL_INVALID', 'TARGET_FORBIDDEN', 'ENDPOINT_NOT_FOUND', 'DELIVERY_NOT_FOUND',
  'CONNECTION_NOT_FOUND',
  'RECORD_NOT_UTF8', 'RECORD_UNMAPPABLE', 'SHUTTING_DOWN', 'STORE_UNAVAILABLE', 'BROKER_UNAVAILABLE',
  'BACKEND_UNAVAILABLE', 'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** WebSocket close codes (RFC 6455 7.4; 4000-4999 are the application's). */
export const CLOSE = {
  /** The server is shutting down: reconnect (to another node, or after the restart). */
  GOING_AWAY: 1001,
  UNSUPPORTED_DATA: 1003,
  POLICY: 1008,
  /** A frame was larger than `websocket.maxFrameBytes`. */
  TOO_BIG: 1009,
  /** The connection's unsent backlog passed its bound; reconnect and resume with `since`. */
  SLOW_CONSUMER: 4000,
  /** The connection's token expired and no fresh one came in an `auth` op. */
  TOKEN_EXPIRED: 4401,
  /** A refreshed token no longer covers the connection's subscriptions, or names another `sub`. */
  FORBIDDEN: 4403,
  /** The client sent frames faster than `limits.messagesPerSecondPerConnection`. */
  RATE_LIMITED: 4429,
} as const;

export type CloseCode = (typeof CLOSE)[keyof typeof CLOSE];

/** SSE event names of what is not an application event (those carry the event's own type). */
export const SSE_EVENT = {
  /** The resume position is gone; the stream goes on live from the head (`id:` is the head). */
  RESET: 'herald.reset',
  /** Presence (`?presence=true`): no `id:` line, so resume positions are untouched. */
  JOIN: 'herald.join',
  LEAVE: 'herald.leave',
  /** The stream ends for a reason the client must act on (`TOKEN_EXPIRED`). */
  ERROR: 'herald.error',
} as const;

/** Why a subscription's position was given up (`reset` frame, `herald.reset` event). */
export type ResetReason = 'position_pruned' | 'position_unknown' | 'epoch_changed';

/** A client-chosen tag echoed in every reply to the frame that carried it. */
export type Ref = string | number;

// ---- client → server ----------------------------------------------------------------------

export interface SubscribeFrame {
  op: 'subscribe';
  /** A channel name or pattern (`orders.*`, `user.42.>`). */
  channel: string;
  /** Resume after this id (exclusive); absent: from now. */
  since?: string | null;
  /** Watch presence changes of the channel (`join` / `leave` frames). */
  presence?: boolean;
  ref?: Ref;
}

export interface UnsubscribeFrame {
  op: 'unsubscribe';
  channel: string;
  ref?: Ref;
}

export interface PublishFrame {
  op: 'publish';
  channel: string;
  data: unknown;
  type?: string;
  idempotencyKey?: string;
  /**
   * Deliver to the subscribers connected now and store nothing (typing indicators, cursors):
   * the ack carries no id, and no replay or history ever returns it. Not with `idempotencyKey`.
   */
  ephemeral?: boolean;
  ref?: Ref;
}

/** Renews the connection's credential without dropping it (same `sub`, same subscriptions). */
export interface AuthFrame {
  op: 'auth';
  token: string;
  ref?: Ref;
}

/** Asks for the members of a channel that tracks presence. */
export interface PresenceQueryFrame {
  op: 'presence';
  channel: string;
  ref?: Ref;
}

export type ClientFrame = SubscribeFrame | UnsubscribeFrame | PublishFrame | AuthFrame | PresenceQueryFrame;

// ---- server → client ----------------------------------------------------------------------

/** One logged event, as a WebSocket `event` frame and (its fields) as SSE `id:`/`event:`/`data:`. */
export interface EventFrame<D = unknown> {
  op: 'event';
  /** `<epoch>-<seq>`: ordered within one log; resume after it with `since` / Last-Event-ID. */
  id: string;
  channel: string;
  type: string;
  data: D;
  /** ISO 8601 time the event was logged. */
  time: string;
}

/**
 * An ephemeral event (published with `ephemeral: true`): never logged, so it has no `id`, moves
 * no resume position and is never replayed. Also the `data:` of its SSE event (without `op`).
 */
export interface EphemeralEventFrame<D = unknown> {
  op: 'event';
  id?: undefined;
  ephemeral: true;
  channel: string;
  type: string;
  data: D;
  time: string;
}

/**
 * Answer to subscribe/unsubscribe (`channel`), publish (`id`; `ephemeral: true` and no id for an
 * ephemeral publish), or auth (`identity`, `expiresAt`).
 */
export interface AckFrame {
  op: 'ack';
  channel?: string;
  id?: string;
  ephemeral?: true;
  identity?: string | null;
  expiresAt?: string | null;
  ref?: Ref;
}

export interface ErrorFrame {
  op: 'error';
  code: ErrorCode;
  message: string;
  ref?: Ref;
}

export interface ResetFrame {
  op: 'reset';
  /** The subscription (pattern) whose position is gone. */
  channel: string;
  reason: ResetReason;
  /** The head: the subscription goes on live after it. */
  id: string;
}

export interface PresenceMember {
  identity: string;
  connections: number;
}

export interface PresenceSnapshotFrame {
  op: 'presence';
  channel: string;
  members: PresenceMember[];
  /** Connections without an identity. */
  anonymous: number;
  ref?: Ref;
}

export interface PresenceChangeFrame {
  op: 'join' | 'leave';
  channel: string;
  identity: string;
}

export type ServerFrame = EventFrame | EphemeralEventFrame | AckFrame | ErrorFrame | ResetFrame | PresenceSnapshotFrame | PresenceChangeFrame;

/** `data:` of the SSE `herald.reset` event. */
export interface SseResetData {
  reason: ResetReason;
  lastEventId: string;
}

/** `data:` of the SSE `herald.join` / `herald.leave` events. */
export interface SsePresenceData {
  channel: string;
  identity: string;
}

/** `data:` of the SSE `herald.error` event. */
export interface SseErrorData {
  code: ErrorCode;
  message: string;
}

/** The body of every refused HTTP request. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}
