import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { checkChannel } from '../core/channel.js';
import { HeraldError } from '../core/errors.js';
import { checkLabel } from '../core/event.js';
import type { DevTokenIssuer } from '../http/routes/dev-token.js';
import { IDENTITY_MAX_CHARS, JwtVerifier, TOKEN_GRANTS_MAX } from './jwt-verifier.js';
import type { Principal } from './permissions.js';
import { mintToken } from './token-mint.js';

/** The `iss` of the tokens Herald mints for itself in dev mode; no other token is read there. */
export const DEV_TOKEN_ISSUER = 'herald-dev';

/** seconds a dev token lives unless the page asks for less: short, so renewal is exercised. */
export const DEV_TOKEN_DEFAULT_TTL_SECONDS = 300;

/** seconds: the longest life a dev token may be given. */
export const DEV_TOKEN_MAX_TTL_SECONDS = 3_600;

/** bytes of the per-process signing secret (HS256 wants at least 32). */
const DEV_SECRET_BYTES = 32;

/**
 * Tokens for dev mode (no API keys, no JWT configured). Dev mode lets anyone subscribe and only
 * this machine publish, with no identity at all, which leaves presence with nobody to name and a
 * page no way to practise the token flow it will use in production. So Herald signs short-lived
 * JWTs itself, with a secret made at start that never leaves the process (`POST /v1/dev/token`,
 * for loopback callers only). Such a token gives its holder the `sub` it names (presence) and the
 * publish grants it carries; subscriptions stay open as dev mode has them. A dev token that is
 * expired or does not verify is refused like any JWT; any other credential is ignored in dev mode,
 * as before. Each process has its own secret: a token is good on the process that minted it.
 */
export class DevTokens implements DevTokenIssuer {
  readonly #secret = randomBytes(DEV_SECRET_BYTES).toString('base64url');
  readonly #verifier = new JwtVerifier({
    secret: this.#secret,
    issuer: DEV_TOKEN_ISSUER,
    clockToleranceSeconds: 0,
    jwksCacheSeconds: 0,
  } as ConstructorParameters<typeof JwtVerifier>[0]);
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** True when `token` claims to be a dev token (its `iss`); it is not verified here. */
  claims(token: string): boolean {
    try {
      return decodeJwt(token).iss === DEV_TOKEN_ISSUER;
    } catch {
      return false;
    }
  }

  verify(token: string): Promise<Principal> {
    return this.#verifier.verify(token);
  }

  /** The trust line of `POST /v1/dev/token`: checks the body, then mints. */
  mintFor(body: Readonly<Record<string, unknown>>): Promise<{ token: string; expiresAt: string }> {
    const bad = checkLabel(body.sub, IDENTITY_MAX_CHARS, 'sub');
    if (bad) throw new HeraldError('BODY_INVALID', bad);
    return this.mint({
      sub: body.sub as string,
      publish: grants(body.publish, 'publish'),
      subscribe: grants(body.subscribe, 'subscribe'),
      ttlSeconds: (body.ttlSeconds ?? DEV_TOKEN_DEFAULT_TTL_SECONDS) as number,
    });
  }

  /** Mints a token for `sub` with the given publish and subscribe grants. */
  async mint(o: { sub: string; publish: readonly string[]; subscribe: readonly string[]; ttlSeconds: number }): Promise<{ token: string; expiresAt: string }> {
    if (!Number.isInteger(o.ttlSeconds) || o.ttlSeconds < 1 || o.ttlSeconds > DEV_TOKEN_MAX_TTL_SECONDS) {
      throw new HeraldError('BODY_INVALID', `ttlSeconds is a whole number from 1 to ${DEV_TOKEN_MAX_TTL_SECONDS}`);
    }
    const now = this.#now();
    const token = await mintToken({ ...o, secret: this.#secret, issuer: DEV_TOKEN_ISSUER, now: () => now });
    return { token, expiresAt: new Date((Math.floor(now / 1000) + o.ttlSeconds) * 1000).toISOString() };
  }
}

function grants(v: unknown, field: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > TOKEN_GRANTS_MAX) {
    throw new HeraldError('BODY_INVALID', `${field} is a list of at most ${TOKEN_GRANTS_MAX} channel patterns`);
  }
  for (const p of v) {
    const c = checkChannel(p);
    if (!c.ok) throw new HeraldError('BODY_INVALID', `${field}: ${String(p).slice(0, 64)}: ${c.reason}`);
  }
  return v as string[];
}
