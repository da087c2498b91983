import { isUtf8 } from 'node:buffer';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { HeraldError } from '../../core/errors.js';

/** One webhook request as it arrived: the raw bytes, never a re-serialisation. */
export interface InboundRequest {
  readonly body: Buffer;
  readonly headers: IncomingHttpHeaders;
  /** Milliseconds since the epoch, when it arrived (the clock tolerance checks use). */
  readonly receivedAt: number;
}

/** What a verified request says, in the provider's own words. */
export interface VerifiedWebhook {
  /** The provider's event id (idempotency); undefined when the provider sends none. */
  readonly id: string | undefined;
  /** The provider's event type (`payment_intent.succeeded`, `push`, `orders/create`, ...). */
  readonly type: string;
  /** The provider's payload, parsed. */
  readonly payload: unknown;
  /**
   * SHA-256 (hex) of exactly the bytes the signature covers (the body alone for GitHub, Shopify
   * and generic HMAC; the timestamp, id or transmission fields with it elsewhere). Two arrivals
   * with the same digest are the same signed message: the second is a replay whatever its
   * unsigned headers say, and the store answers it as a duplicate. Undefined when nothing is
   * signed, and when the event id is itself inside the signed bytes (Stripe, Standard Webhooks):
   * every replay of them then carries the same id, which the idempotency key already catches, so
   * a digest would cost a second index write per webhook and catch nothing more.
   */
  readonly signedDigest: string | undefined;
  /**
   * Set when the provider expects an answer instead of an event: Slack's `url_verification`
   * handshake must echo its `challenge`, and is not published.
   */
  readonly challenge?: string | undefined;
}

/**
 * One provider's signature scheme. `verify` checks the signature over the raw bytes in constant
 * time against every configured secret (several secrets: rotation without downtime), then
 * parses the payload; it throws a HeraldError naming what is wrong and never reveals a secret.
 */
export interface WebhookVerifier {
  /** Request headers worth keeping in the inbound log (lower case): signatures, ids, times. */
  readonly auditHeaders: readonly string[];
  verify(req: InboundRequest): VerifiedWebhook | Promise<VerifiedWebhook>;
}

/** The first value of a header, or undefined when absent or empty. */
export function header(req: InboundRequest, name: string): string | undefined {
  const v = req.headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s === '' ? undefined : s;
}

/** A header the scheme cannot do without: SIGNATURE_MISSING (400) when absent. */
export function requireHeader(req: InboundRequest, name: string): string {
  const v = header(req, name);
  if (v === undefined) throw new HeraldError('SIGNATURE_MISSING', `the ${name} header is missing`);
  return v;
}

/** The media type without parameters, lower case (`application/json`). */
export function mediaType(req: InboundRequest): string {
  return (header(req, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase();
}

function isJsonMediaType(t: string): boolean {
  return t === 'application/json' || (t.startsWith('application/') && t.endsWith('+json'));
}

/** Rejects anything but JSON with UNSUPPORTED_MEDIA_TYPE (415). */
export function requireJson(req: InboundRequest, also: readonly string[] = []): string {
  const t = mediaType(req);
  if (isJsonMediaType(t) || also.includes(t)) return t;
  const accepted = ['application/json', ...also].join(' or ');
  throw new HeraldError('UNSUPPORTED_MEDIA_TYPE', `this source takes ${accepted}, not "${t || 'no content type'}"`);
}

/**
 * Rejects a body that is not UTF-8. Schemes that sign text (Stripe, GitHub, Standard Webhooks)
 * have their libraries decode the body: two different invalid byte sequences decode to the same
 * text, so only valid UTF-8 keeps "the raw bytes are what was verified" true.
 */
export function requireUtf8(body: Buffer): string {
  if (body.length === 0) throw new HeraldError('JSON_INVALID', 'the body is empty');
  if (!isUtf8(body)) throw new HeraldError('JSON_INVALID', 'the body is not valid UTF-8');
  return body.toString('utf8');
}

/** Parses JSON text, or JSON_INVALID. */
export function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HeraldError('JSON_INVALID', `the body is not valid JSON: ${(err as Error).message}`);
  }
}

/** `application/x-www-form-urlencoded` as an object; a JSON `payload` field is parsed. */
export function parseForm(text: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(text)) out[k] = v;
  if (typeof out.payload === 'string') out.payload = parseJsonText(out.payload);
  return out;
}

/** SHA-256 (hex) of the parts, concatenated: the digest of a signature's signed bytes. */
export function signedDigest(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** Constant-time equality of two byte strings (length is not secret: digests have one). */
export function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Rejects a signed timestamp (seconds) further than `toleranceSeconds` from the arrival time:
 * a captured request replayed later carries a valid signature but an old timestamp.
 */
export function checkTolerance(timestampSeconds: number, req: InboundRequest, toleranceSeconds: number): void {
  const skew = Math.abs(req.receivedAt / 1000 - timestampSeconds);
  if (!Number.isFinite(skew) || skew > toleranceSeconds) {
    throw new HeraldError(
      'TIMESTAMP_OUT_OF_TOLERANCE',
      `the signed timestamp is ${Math.round(skew)} s from now; at most ${toleranceSeconds} s is accepted`,
    );
  }
}

/** A string field of a JSON object, or undefined. */
export function field(payload: unknown, key: string): string | undefined {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return undefined;
  const v = (payload as Record<string, unknown>)[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** A field the provider always sends: WEBHOOK_PAYLOAD_INVALID when it is missing. */
export function requireField(payload: unknown, key: string, provider: string): string {
  const v = field(payload, key);
  if (v === undefined) {
    throw new HeraldError('WEBHOOK_PAYLOAD_INVALID', `a ${provider} payload is a JSON object with a string "${key}"`);
  }
  return v;
}

export function signatureInvalid(): HeraldError {
  return new HeraldError('SIGNATURE_INVALID', 'the signature matches none of the configured secrets');
}
