import { createHmac, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';

/**
 * Signing per the Standard Webhooks specification (standardwebhooks.com, "Signature scheme"):
 * the signed content is `${webhook-id}.${webhook-timestamp}.${body}`, the MAC is HMAC-SHA256
 * keyed with the base64-decoded secret (after its `whsec_` prefix), and `webhook-signature` is a
 * space-separated list of `v1,<base64 MAC>`, one per secret still valid (key rotation).
 */

export const SECRET_PREFIX = 'whsec_';
/** Bytes of key in a generated secret: the spec asks for 24 to 64; 32 matches SHA-256. */
export const SECRET_KEY_BYTES = 32;

/** A new endpoint secret: `whsec_` + base64 of 32 random bytes. */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(SECRET_KEY_BYTES).toString('base64');
}

/** Decoded keys of the secrets in use, so a signature costs no base64 decoding. */
const keys = new Map<string, KeyObject>();
/** Secrets whose keys are kept at most (a rotation adds one; old ones fall out first). */
const KEY_CACHE_MAX = 1_024;

function keyOf(secret: string): KeyObject {
  let key = keys.get(secret);
  if (key === undefined) {
    if (keys.size >= KEY_CACHE_MAX) keys.delete(keys.keys().next().value!);
    key = createSecretKey(Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, 'base64'));
    keys.set(secret, key);
  }
  return key;
}

/** The `webhook-signature` value for one message, signed with every secret given (newest first). */
export function signatureHeader(
  msgId: string,
  timestampSeconds: number,
  body: string,
  secrets: readonly string[],
): string {
  const prefix = `${msgId}.${timestampSeconds}.`;
  return secrets
    .map((s) => 'v1,' + createHmac('sha256', keyOf(s)).update(prefix).update(body).digest('base64'))
    .join(' ');
}

/** The three Standard Webhooks headers for one attempt; the timestamp is the attempt's. */
export function standardHeaders(
  msgId: string,
  body: string,
  secrets: readonly string[],
  nowMs: number,
): Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string> {
  const ts = Math.floor(nowMs / 1000);
  return {
    'webhook-id': msgId,
    'webhook-timestamp': String(ts),
    'webhook-signature': signatureHeader(msgId, ts, body, secrets),
  };
}
