import { SignJWT } from 'jose';
import { checkChannel } from '../core/channel.js';
import { JWT_SECRET_MIN_BYTES } from '../config/auth-schema.js';

/** Development tokens live an hour unless asked otherwise. */
export const DEV_TOKEN_TTL_SECONDS = 3_600;

export interface MintOptions {
  /** The HMAC secret (auth.jwt.secret), used as its UTF-8 bytes. */
  secret: string;
  sub: string;
  subscribe?: readonly string[];
  publish?: readonly string[];
  ttlSeconds?: number;
  audience?: string | readonly string[] | undefined;
  issuer?: string | undefined;
  alg?: 'HS256' | 'HS384' | 'HS512';
  now?: () => number;
}

/**
 * Mints an HS256 token Herald accepts: `sub` is the identity, `herald.subscribe` and
 * `herald.publish` the channel patterns granted. For development and tests: production tokens
 * come from the application's own backend, signed with the same secret or a private key.
 */
export async function mintToken(o: MintOptions): Promise<string> {
  if (Buffer.byteLength(o.secret) < JWT_SECRET_MIN_BYTES) {
    throw new Error(`the HMAC secret needs at least ${JWT_SECRET_MIN_BYTES} bytes`);
  }
  for (const p of [...(o.subscribe ?? []), ...(o.publish ?? [])]) {
    const c = checkChannel(p);
    if (!c.ok) throw new Error(`${p}: ${c.reason}`);
  }
  const nowSeconds = Math.floor((o.now ?? Date.now)() / 1000);
  const jwt = new SignJWT({ herald: { subscribe: [...(o.subscribe ?? [])], publish: [...(o.publish ?? [])] } })
    .setProtectedHeader({ alg: o.alg ?? 'HS256', typ: 'JWT' })
    .setSubject(o.sub)
    .setIssuedAt(nowSeconds)
    .setExpirationTime(nowSeconds + (o.ttlSeconds ?? DEV_TOKEN_TTL_SECONDS));
  if (o.audience !== undefined) jwt.setAudience(typeof o.audience === 'string' ? o.audience : [...o.audience]);
  if (o.issuer !== undefined) jwt.setIssuer(o.issuer);
  return jwt.sign(new TextEncoder().encode(o.secret));
}
