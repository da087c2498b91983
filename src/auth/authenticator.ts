import type { IncomingHttpHeaders } from 'node:http';
import { HeraldError } from '../core/errors.js';
import { ApiKeyTable } from './api-keys.js';
import type { AuthConfig } from '../config/auth-schema.js';
import { DevTokens } from './dev-tokens.js';
import { JwtVerifier } from './jwt-verifier.js';
import { ANONYMOUS, type Principal } from './permissions.js';

/** The longest credential read: anything longer is refused before any hashing or parsing. */
export const TOKEN_MAX_CHARS = 8_192;

/** A JWS in compact serialization (RFC 7515 7.1): three base64url parts. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Where a credential was found. Only `header` is accepted by publish and operator APIs (CSRF). */
export type CredentialSource = 'header' | 'query' | 'cookie';

export interface Credential {
  readonly token: string;
  readonly source: CredentialSource;
}

/** `Authorization: Bearer <token>` (RFC 6750 2.1), or undefined. */
export function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  const h = headers.authorization;
  if (h === undefined) return undefined;
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(h);
  // A malformed Authorization header is a credential that fails, never "no credential".
  return m ? m[1]! : h;
}

/** The value of cookie `name` from a Cookie header (RFC 6265 4.2.1), or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    let v = part.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
    try {
      return decodeURIComponent(v);
    } catch {
      return v;
    }
  }
  return undefined;
}

/**
 * The credential of a subscriber: the Authorization header, else the `token` query parameter
 * (EventSource cannot set headers), else the auth cookie.
 */
export function subscriberCredential(
  headers: IncomingHttpHeaders,
  query: URLSearchParams | Record<string, unknown>,
  cookieName: string,
  allowCookie = true,
): Credential | undefined {
  const header = bearerToken(headers);
  if (header !== undefined) return { token: header, source: 'header' };
  const q = query instanceof URLSearchParams ? query.get('token') : query.token;
  const fromQuery = Array.isArray(q) ? q[q.length - 1] : q;
  if (typeof fromQuery === 'string' && fromQuery !== '') return { token: fromQuery, source: 'query' };
  if (!allowCookie) return undefined;
  const fromCookie = cookieValue(headers.cookie, cookieName);
  if (fromCookie) return { token: fromCookie, source: 'cookie' };
  return undefined;
}

/**
 * Turns a presented credential into a Principal: an API key (constant-time digest compare) or a
 * JWT (jose). With neither configured Herald is in dev mode and nobody authenticates.
 */
export class Authenticator {
  readonly #keys: ApiKeyTable;
  readonly #jwt: JwtVerifier | undefined;
  /** Dev mode only: the tokens Herald mints for itself (src/auth/dev-tokens.ts). */
  readonly dev: DevTokens | undefined;

  constructor(config: AuthConfig) {
    this.#keys = new ApiKeyTable(config.apiKeys);
    this.#jwt = config.jwt ? new JwtVerifier(config.jwt) : undefined;
    this.dev = this.configured ? undefined : new DevTokens();
  }

  /** True when keys or a JWT key are configured; false is dev mode. */
  get configured(): boolean {
    return this.#keys.size > 0 || this.#jwt !== undefined;
  }

  get jwtEnabled(): boolean {
    return this.#jwt !== undefined;
  }

  /**
   * The principal of `token`, ANONYMOUS when there is none; throws a 401 HeraldError. Only a
   * token from the Authorization header may be an API key: a URL (`?token=`) ends up in proxy
   * and server logs, browser history and Referer headers (RFC 6750 2.3, 5.3), and a cookie is
   * sent by the browser on its own. Those places take JWTs only, which expire; an API key there is
   * refused without being looked up, so they never tell whether a key is valid.
   */
  async authenticate(token: string | undefined, source: CredentialSource = 'header'): Promise<Principal> {
    if (token === undefined) return ANONYMOUS;
    if (token.length > TOKEN_MAX_CHARS) throw new HeraldError('TOKEN_INVALID', `a token is at most ${TOKEN_MAX_CHARS} characters`);
    // Dev mode reads its own tokens only (identity for presence); anything else stays anonymous.
    if (this.dev) return COMPACT_JWS.test(token) && this.dev.claims(token) ? this.dev.verify(token) : ANONYMOUS;
    if (source !== 'header') {
      if (!COMPACT_JWS.test(token)) {
        throw new HeraldError(
          'API_KEY_NOT_IN_HEADER',
          `${source === 'query' ? '?token=' : 'the cookie'} takes a JWT only; send an API key as Authorization: Bearer <key>`,
        );
      }
      if (this.#jwt) return this.#jwt.verify(token);
      throw new HeraldError('TOKEN_INVALID', 'no JWT key is configured on this server; send an API key as Authorization: Bearer <key>');
    }
    if (this.#keys.size > 0) {
      const p = this.#keys.lookup(token);
      if (p) return p;
    }
    if (this.#jwt && COMPACT_JWS.test(token)) return this.#jwt.verify(token);
    if (!this.configured) throw new HeraldError('UNAUTHORIZED', 'no credentials are configured on this server (dev mode)');
    if (this.#jwt && this.#keys.size === 0) throw new HeraldError('TOKEN_INVALID', 'the token is not a JWT');
    throw new HeraldError('API_KEY_INVALID');
  }
}
