import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { checkChannel } from '../core/channel.js';
import { HeraldError } from '../core/errors.js';
import type { JwtConfig } from '../config/auth-schema.js';
import { algorithmsFor, HMAC_ALGS, OKP_ALGS, RSA_ALGS } from '../config/jwt-key.js';
import type { Principal } from './permissions.js';

/** The longest `sub` kept as an identity: it names presence members and rate-limit buckets. */
export const IDENTITY_MAX_CHARS = 256;
/** Channel patterns one token may grant per direction: bounds the work of each permission check. */
export const TOKEN_GRANTS_MAX = 256;
/** The JWKS fetch may take this long before the token is refused as AUTH_UNAVAILABLE. */
export const JWKS_TIMEOUT_MS = 5_000;
/** After a failed or unmatched JWKS fetch, wait this long before fetching again (no stampede). */
export const JWKS_COOLDOWN_MS = 30_000;

/**
 * Verifies JWTs (RFC 7519) with jose and turns their claims into a Principal: `sub` is the
 * identity, `herald.subscribe` and `herald.publish` the channel patterns granted. `exp`, `nbf`,
 * `aud` and `iss` are enforced; every failure maps to a registry code.
 */
export class JwtVerifier {
  readonly #key: Uint8Array | KeyObject | JWTVerifyGetKey;
  readonly #algorithms: string[];
  readonly #config: JwtConfig;

  constructor(config: JwtConfig) {
    this.#config = config;
    if (config.secret !== undefined) {
      // The secret is used as its UTF-8 bytes, the way every JWT library treats a string secret.
      this.#key = new TextEncoder().encode(config.secret);
      this.#algorithms = HMAC_ALGS;
    } else if (config.publicKey !== undefined) {
      const key = createPublicKey(config.publicKey);
      this.#key = key;
      this.#algorithms = algorithmsFor(key);
    } else {
      this.#key = createRemoteJWKSet(new URL(config.jwksUrl!), {
        cacheMaxAge: config.jwksCacheSeconds * 1000,
        cooldownDuration: JWKS_COOLDOWN_MS,
        timeoutDuration: JWKS_TIMEOUT_MS,
      });
      // A JWKS only ever holds public keys here: HMAC algorithms are never accepted from it.
      this.#algorithms = [...RSA_ALGS, 'ES256', 'ES384', 'ES512', ...OKP_ALGS];
    }
  }

  /** Verifies `token` and returns its principal, or throws a HeraldError (401 or 503). */
  async verify(token: string): Promise<Principal> {
    let payload: JWTPayload;
    try {
      const key = this.#key;
      const options = {
        algorithms: this.#algorithms,
        clockTolerance: this.#config.clockToleranceSeconds,
        ...(this.#config.audience !== undefined ? { audience: this.#config.audience } : {}),
        ...(this.#config.issuer !== undefined ? { issuer: this.#config.issuer } : {}),
      };
      const result =
        typeof key === 'function' ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options);
      payload = result.payload;
    } catch (err) {
      throw toHeraldError(err);
    }
    // Valid until the same instant verification would start refusing it: exp plus the tolerance.
    return principalFromClaims(payload, this.#config.clockToleranceSeconds * 1000);
  }
}

/** Maps jose's errors onto the registry. The message never carries the token. */
export function toHeraldError(err: unknown): HeraldError {
  if (err instanceof HeraldError) return err;
  const e = err as { code?: string; claim?: string; reason?: string };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return new HeraldError('TOKEN_EXPIRED', 'the token has expired; get a fresh one');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'nbf') return new HeraldError('TOKEN_NOT_YET_VALID', 'the token is not valid yet (nbf)');
      if (e.claim === 'aud') return new HeraldError('TOKEN_AUDIENCE_INVALID', 'the token is for another audience (aud)');
      if (e.claim === 'iss') return new HeraldError('TOKEN_ISSUER_INVALID', 'the token is from another issuer (iss)');
      return new HeraldError('TOKEN_CLAIMS_INVALID', `the token's "${e.claim ?? '?'}" claim is invalid`);
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return new HeraldError('TOKEN_INVALID', 'the token is signed with an algorithm this key does not allow');
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return new HeraldError('TOKEN_INVALID', 'the token signature does not verify');
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return new HeraldError('TOKEN_INVALID', 'no key of the JWKS verifies the token');
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
      return new HeraldError('AUTH_UNAVAILABLE');
    default:
      // Fetch failures of the JWKS surface as plain errors without a jose code.
      if (e.code === undefined && err instanceof TypeError) return new HeraldError('AUTH_UNAVAILABLE');
      return new HeraldError('TOKEN_INVALID', 'the token is not a valid signed JWT');
  }
}

function grants(claim: Record<string, unknown>, field: 'subscribe' | 'publish'): string[] {
  const v = claim[field];
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > TOKEN_GRANTS_MAX) {
    throw new HeraldError('TOKEN_CLAIMS_INVALID', `herald.${field} must be a list of at most ${TOKEN_GRANTS_MAX} channel patterns`);
  }
  for (const p of v) {
    if (!checkChannel(p).ok) throw new HeraldError('TOKEN_CLAIMS_INVALID', `herald.${field} holds an invalid channel pattern`);
  }
  return v as string[];
}

/** The principal a verified token grants (`sub` and the `herald` claim). */
export function principalFromClaims(payload: JWTPayload, toleranceMs = 0): Principal {
  const sub = payload.sub;
  if (sub !== undefined && (typeof sub !== 'string' || sub.length === 0 || sub.length > IDENTITY_MAX_CHARS)) {
    throw new HeraldError('TOKEN_CLAIMS_INVALID', `sub must be a string of 1 to ${IDENTITY_MAX_CHARS} characters`);
  }
  const h = payload.herald;
  if (h !== undefined && (h === null || typeof h !== 'object' || Array.isArray(h))) {
    throw new HeraldError('TOKEN_CLAIMS_INVALID', 'the herald claim must be an object {subscribe, publish}');
  }
  const claim = (h ?? {}) as Record<string, unknown>;
  return Object.freeze({
    identity: sub,
    kind: 'jwt',
    subscribe: Object.freeze(grants(claim, 'subscribe')),
    publish: Object.freeze(grants(claim, 'publish')),
    admin: false,
    expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 + toleranceMs : undefined,
  });
}
