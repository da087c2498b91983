import { checkChannel } from './channel.js';
import { HeraldError } from './errors.js';
import type { ReceiptInput } from './inbound-receipt.js';
import { DEFAULT_EVENT_TYPE, IDEMPOTENCY_KEY_MAX_BYTES, TYPE_MAX_BYTES } from './limits.js';
import { formatEventId } from './position.js';

/**
 * What a publisher hands to the hub, already validated at the boundary (see `toEventInput`).
 * `data` is JSON text: the value exactly as published (a string is stored as a JSON string).
 */
export interface EventInput {
  readonly channel: string;
  readonly type: string;
  /** JSON text of the published value. */
  readonly data: string;
  readonly idempotencyKey?: string | undefined;
  /**
   * Keep `idempotencyKey` at least this many milliseconds, when longer than the store-wide
   * `idempotencyTtlMs` (a webhook provider that retries for days needs its ids kept for days).
   */
  readonly idempotencyTtlMs?: number | undefined;
  /** An inbound webhook receipt to record in the same transaction (see core/inbound-receipt.ts). */
  readonly receipt?: ReceiptInput | undefined;
  /**
   * The record's place in an outside ordered stream (a Kafka partition): the store keeps each
   * record of a stream once, however often it is replayed (see the EventStore specification).
   */
  readonly origin?: StreamPosition | undefined;
}

/** A record's position in an outside ordered stream, such as one partition of a Kafka topic. */
export interface StreamPosition {
  /** Names one ordered stream, e.g. `kafka/orders/0` (topic `orders`, partition 0). */
  readonly stream: string;
  /** The record's offset in that stream: an integer >= 0, increasing along the stream. */
  readonly offset: number;
}

/**
 * An event as the log keeps it. `seq` is the log position (strictly increasing, never reused);
 * clients see it only as the opaque string `id`: `<epoch>-<seq>` (see core/position.ts).
 */
export interface StoredEvent {
  readonly seq: number;
  readonly id: string;
  readonly channel: string;
  readonly type: string;
  /** JSON text of the published value. */
  readonly data: string;
  /** Milliseconds since the epoch, when the log accepted it. */
  readonly time: number;
  /**
   * Bytes made once per event per transport (SSE frame, WebSocket frame), shared by every
   * subscriber. Filled lazily by the transports; never persisted.
   */
  readonly encoded: { [transport: string]: Buffer | undefined };
}

export function makeStoredEvent(
  seq: number,
  channel: string,
  type: string,
  data: string,
  time: number,
  epoch: string,
): StoredEvent {
  return { seq, id: formatEventId(epoch, seq), channel, type, data, time, encoded: {} };
}

/**
 * An ephemeral event (a publish with `ephemeral: true`): handed to the subscribers live at that
 * moment and then forgotten. It is never appended to the log, so it has no `seq` and no `id`:
 * nothing replays it, nothing resumes past it, and `GET /v1/events` never returns it.
 */
export interface EphemeralEvent {
  readonly channel: string;
  readonly type: string;
  /** JSON text of the published value. */
  readonly data: string;
  /** Milliseconds since the epoch, when Herald accepted it. */
  readonly time: number;
  /** Bytes made once per transport, shared by every subscriber (as StoredEvent.encoded). */
  readonly encoded: { [transport: string]: Buffer | undefined };
}

export function makeEphemeralEvent(input: EventInput, time: number): EphemeralEvent {
  return { channel: input.channel, type: input.type, data: input.data, time, encoded: {} };
}

/**
 * The JSON text of an ephemeral event: the fields of a logged one without `id`, and
 * `"ephemeral":true`, so a client can tell it apart (and keeps its resume position untouched).
 */
export function ephemeralJsonText(e: EphemeralEvent, extra = ''): string {
  return (
    `{${extra}"channel":"${e.channel}","type":${JSON.stringify(e.type)},` +
    `"data":${e.data},"time":"${new Date(e.time).toISOString()}","ephemeral":true}`
  );
}

/**
 * Whether an untrusted publish object asks for an ephemeral event (`"ephemeral": true`). An
 * ephemeral event is never stored, so an idempotency key (which dedupes stored events) is refused
 * with it rather than silently ignored.
 */
export function wantsEphemeral(raw: unknown, where = ''): boolean {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return false;
  const o = raw as Record<string, unknown>;
  if (o.ephemeral === undefined || o.ephemeral === false) return false;
  if (o.ephemeral !== true) throw new HeraldError('BODY_INVALID', `${where}"ephemeral" is true or false`);
  if (o.idempotencyKey !== undefined && o.idempotencyKey !== null) {
    throw new HeraldError('BODY_INVALID', `${where}an ephemeral event is not stored, so it takes no idempotencyKey`);
  }
  return true;
}

/** The public JSON shape of an event: `data` is the value as published. */
export interface EventJson {
  id: string;
  channel: string;
  type: string;
  data: unknown;
  time: string;
}

export function eventToJson(e: StoredEvent): EventJson {
  return {
    id: e.id,
    channel: e.channel,
    type: e.type,
    data: JSON.parse(e.data) as unknown,
    time: new Date(e.time).toISOString(),
  };
}

/**
 * The JSON text of an event, built by splicing the stored `data` text in, so the published value
 * is never parsed and re-serialised on the delivery path.
 */
export function eventJsonText(e: StoredEvent, extra = ''): string {
  return (
    `{${extra}"id":"${e.id}","channel":"${e.channel}","type":${JSON.stringify(e.type)},` +
    `"data":${e.data},"time":"${new Date(e.time).toISOString()}"}`
  );
}

/**
 * The text a plain-text transport delivers (SSE `data:`, seed WebSocket): a string value is
 * delivered as that text, any other value as its JSON text.
 */
export function dataText(e: StoredEvent | EphemeralEvent): string {
  return e.data.charCodeAt(0) === 0x22 /* " */ ? (JSON.parse(e.data) as string) : e.data;
}

/*
 * The text rules of the trust line, defined here once: every boundary (publish, inbound webhooks,
 * Kafka records, outbound endpoint filters, the config) uses these, so no door is laxer than
 * another.
 */

/**
 * C0 controls and DEL. CR and LF would let a value break out of an SSE field line or an HTTP
 * header (response splitting, RFC 9110 §5.5), NUL ends a C string early in a log or a driver.
 */
// eslint-disable-next-line no-control-regex
export const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/** RFC 9110 §5.6.2 token: the characters an HTTP header name may hold (no CR/LF, no `:`). */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Why `value` is not a label of 1 to `max` bytes without control characters, or undefined. */
export function checkLabel(value: unknown, max: number, what: string): string | undefined {
  if (typeof value !== 'string') return `${what} must be a string`;
  if (value.length === 0) return `${what} must not be empty`;
  if (Buffer.byteLength(value) > max) return `${what} must be at most ${max} bytes`;
  if (CONTROL_CHARACTER.test(value)) return `${what} must not contain control characters (CR, LF, NUL, ...)`;
  return undefined;
}

/**
 * Why `value` is not an event type, or undefined: 1 to TYPE_MAX_BYTES bytes (it travels in every
 * SSE `event:` line, and an empty one reads as `message` there), no control character.
 */
export function checkEventType(value: unknown): string | undefined {
  return checkLabel(value, TYPE_MAX_BYTES, 'type');
}

export function isEventType(value: unknown): value is string {
  return checkEventType(value) === undefined;
}

/**
 * The trust line for published events: turns one untrusted publish object into an EventInput
 * or throws a HeraldError naming what is wrong. Everything past here may assume valid input.
 */
export function toEventInput(raw: unknown, where = ''): EventInput {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new HeraldError('BODY_INVALID', `${where}an event must be a JSON object`);
  }
  const o = raw as Record<string, unknown>;
  const ch = checkChannel(o.channel);
  if (!ch.ok) throw new HeraldError('CHANNEL_INVALID', `${where}${ch.reason}`);
  if (ch.pattern) {
    throw new HeraldError('CHANNEL_IS_PATTERN', `${where}cannot publish to the pattern ${String(o.channel)}`);
  }
  if (!('data' in o) || o.data === undefined) {
    throw new HeraldError('DATA_MISSING', `${where}"data" is required (any JSON value)`);
  }
  let type = DEFAULT_EVENT_TYPE;
  if (o.type !== undefined && o.type !== null) {
    const bad = checkEventType(o.type);
    if (bad) throw new HeraldError('TYPE_INVALID', where + bad);
    type = o.type as string;
  }
  let idempotencyKey: string | undefined;
  if (o.idempotencyKey !== undefined && o.idempotencyKey !== null) {
    const bad = checkLabel(o.idempotencyKey, IDEMPOTENCY_KEY_MAX_BYTES, 'idempotencyKey');
    if (bad) throw new HeraldError('IDEMPOTENCY_KEY_INVALID', where + bad);
    idempotencyKey = o.idempotencyKey as string;
  }
  let data: string;
  try {
    data = JSON.stringify(o.data);
  } catch (err) {
    // A value nested deep enough overflows the stack (JSON_MAX_DEPTH guards the HTTP bodies):
    // the client's fault, never a 500.
    if (err instanceof RangeError) throw new HeraldError('JSON_TOO_DEEP', `${where}"data" nests too deeply`);
    throw err;
  }
  return { channel: o.channel as string, type, data, idempotencyKey };
}
