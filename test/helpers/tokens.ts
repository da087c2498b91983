import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT, type JWTPayload } from 'jose';

/** An HMAC secret long enough for HS256 (RFC 7518 3.2). */
export const TEST_SECRET = 'test-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

/** Mints a token with jose, the way an application backend would. `exp` defaults to +1 h. */
export async function sign(
  claims: JWTPayload,
  key: Uint8Array | KeyObject | string = TEST_SECRET,
  header: { alg?: string; kid?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const k = typeof key === 'string' ? new TextEncoder().encode(key) : key;
  return new SignJWT({ exp: now + 3600, iat: now, ...claims })
    .setProtectedHeader({ alg: header.alg ?? 'HS256', typ: 'JWT', ...(header.kid ? { kid: header.kid } : {}) })
    .sign(k);
}

/** A token for `sub` that may subscribe to `subscribe` and publish to `publish`. */
export function userToken(sub: string, subscribe: string[], publish: string[] = [], extra: JWTPayload = {}): Promise<string> {
  return sign({ sub, herald: { subscribe, publish }, ...extra });
}

export function rsaKeys() {
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}

export function pem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

/** base64url of a JSON value: for hand-made (unsigned, forged) tokens. */
export function b64url(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}
