import { isPattern } from '../core/channel.js';

/**
 * Who a request or connection is, and what it may do. Made once per connection (or request) by
 * the authenticator; checked at subscribe and publish time, never per delivered event.
 */
export interface Principal {
  /** `sub` of a token, `key:<name>` of an API key; undefined for anonymous clients. */
  readonly identity: string | undefined;
  /** How the credentials came: none, an API key, or a JWT. */
  readonly kind: 'anonymous' | 'api_key' | 'jwt';
  /** Channel patterns this principal may subscribe to. */
  readonly subscribe: readonly string[];
  /** Channel patterns this principal may publish to. */
  readonly publish: readonly string[];
  /** Operator APIs (endpoints, inbound logs, replays); also every channel both ways. */
  readonly admin: boolean;
  /** Milliseconds since the epoch when the credentials stop being valid (JWT `exp`). */
  readonly expiresAt: number | undefined;
}

export const ANONYMOUS: Principal = Object.freeze({
  identity: undefined,
  kind: 'anonymous',
  subscribe: [],
  publish: [],
  admin: false,
  expiresAt: undefined,
});

/**
 * True when every channel that `requested` matches is also matched by `granted`, so a grant of
 * `user.42.*` covers a subscription to `user.42.inbox` but not to `user.*` or `user.>`. Both are
 * valid names or NATS-style patterns (src/core/channel.ts).
 */
export function covers(granted: string, requested: string): boolean {
  if (!isPattern(granted)) return granted === requested;
  const g = granted.split('.');
  const r = requested.split('.');
  for (let i = 0; i < g.length; i++) {
    const t = g[i]!;
    // `>` matches one or more tokens: whatever `requested` has from here (at least one token).
    if (t === '>') return r.length > i;
    if (i >= r.length) return false;
    const q = r[i]!;
    if (q === '>') return false; // `>` spans tokens a single granted token cannot.
    if (t !== '*' && t !== q) return false; // a literal grant never covers `*`.
  }
  return g.length === r.length;
}

/** True when one of `grants` covers `requested`. */
export function anyCovers(grants: readonly string[], requested: string): boolean {
  for (const g of grants) if (covers(g, requested)) return true;
  return false;
}

export function maySubscribe(p: Principal, pattern: string, publicChannels: readonly string[]): boolean {
  return p.admin || anyCovers(p.subscribe, pattern) || anyCovers(publicChannels, pattern);
}

export function mayPublish(p: Principal, channel: string): boolean {
  return p.admin || anyCovers(p.publish, channel);
}

/** Splits API key scopes (`admin`, `publish:<pattern>`, `subscribe:<pattern>`) into grants. */
export function scopesToGrants(scopes: readonly string[]): { subscribe: string[]; publish: string[]; admin: boolean } {
  const out = { subscribe: [] as string[], publish: [] as string[], admin: false };
  for (const s of scopes) {
    if (s === 'admin') out.admin = true;
    else if (s.startsWith('publish:')) out.publish.push(s.slice('publish:'.length));
    else if (s.startsWith('subscribe:')) out.subscribe.push(s.slice('subscribe:'.length));
  }
  return out;
}
