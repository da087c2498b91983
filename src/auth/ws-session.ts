import { isPattern } from '../core/channel.js';
import { HeraldError } from '../core/errors.js';
import type { ConnectionLease, MessageBudget } from '../limits/limits.js';
import type { PresenceChange } from '../core/presence.js';
import type { IncomingFrame, WsPolicy, WsPolicyHost } from '../transports/ws/ws-policy.js';
import { withRef } from '../transports/ws/ws-connection.js';
import { CLOSE, type AckFrame, type ErrorFrame, type PresenceSnapshotFrame } from '../core/protocol.js';
import { mayPublish, type Principal } from './permissions.js';
import type { Security } from './security.js';
import { MAX_TIMER_MS } from './stream-gate.js';

/** WebSocket close codes of auth and limits (RFC 6455 7.4.2: 4000-4999 are the application's). */
export const AUTH_CLOSE = {
  TOKEN_EXPIRED: CLOSE.TOKEN_EXPIRED,
  FORBIDDEN: CLOSE.FORBIDDEN,
  RATE_LIMITED: CLOSE.RATE_LIMITED,
} as const;


/**
 * The auth side of one `/v1/ws` connection: who it is, what it may subscribe and publish, when
 * its token expires, how fast it may send, and its presence. The protocol core
 * (src/transports/ws/ws-connection.ts) calls it at subscribe, unsubscribe and publish time and for
 * the ops it adds (`auth`, `presence`); event delivery never touches it.
 */
export class WsSession implements WsPolicy {
  readonly #security: Security;
  readonly #address: string | undefined;
  readonly #lease: ConnectionLease;
  readonly #budget: MessageBudget | undefined;
  #principal: Principal;
  #identityLease: ConnectionLease | undefined;
  #host: WsPolicyHost | undefined;
  #expiry: NodeJS.Timeout | undefined;
  /**
   * The subscribed channels that track presence, with the membership (and watcher) each holds.
   * Made at the first one: most connections have none, and an empty Map is some 200 bytes.
   */
  #presenceSubs: Map<string, { leave: () => void; unwatch: (() => void) | undefined }> | undefined;
  #closed = false;

  constructor(o: {
    security: Security;
    principal: Principal;
    address: string | undefined;
    lease: ConnectionLease;
    budget: MessageBudget | undefined;
  }) {
    this.#security = o.security;
    this.#principal = o.principal;
    this.#address = o.address;
    this.#lease = o.lease;
    this.#budget = o.budget;
  }

  get principal(): Principal {
    return this.#principal;
  }

  identity(): string | undefined {
    return this.#principal.identity;
  }

  get address(): string | undefined {
    return this.#address;
  }

  /** Binds the session to its open connection and starts the expiry clock. */
  attach(host: WsPolicyHost): void {
    this.#host = host;
    this.#armExpiry();
  }

  /** Spends one client frame; past the rate the connection is closed and false returned. */
  admitFrame(): boolean {
    if (this.#budget === undefined || this.#budget.spend()) return true;
    this.#host?.close(AUTH_CLOSE.RATE_LIMITED, 'rate limited: too many frames per second');
    return false;
  }

  /** Throws unless the connection may subscribe to `pattern`. */
  authorizeSubscribe(pattern: string): void {
    this.#security.authorizeSubscribe(this.#principal, pattern);
  }

  /**
   * Throws unless the connection may publish to `channel`: allowed by `websocket.clientPublish`
   * (open to every client) or by its credentials; then spends one token of its publish rate.
   */
  authorizePublish(channel: string, allowedByConfig: boolean): void {
    const p = this.#principal;
    if (!allowedByConfig && !(p.kind !== 'anonymous' && mayPublish(p, channel))) {
      throw new HeraldError(
        p.kind === 'anonymous' && !this.#security.devMode ? 'UNAUTHORIZED' : 'PUBLISH_FORBIDDEN',
        `clients may not publish to ${channel} (websocket.clientPublish, or a token's herald.publish)`,
      );
    }
    this.#security.limits.publish(p.identity ?? `ip:${this.#address}`, this.#address);
  }

  /** A subscription started: counts presence, and watches it when the client asked (`presence: true`). */
  subscribed(pattern: string, frame: IncomingFrame): void {
    if (this.#closed) return;
    const presence = this.#security.presence;
    if (isPattern(pattern) || !presence.enabled(pattern)) return;
    const unwatch = frame.presence === true ? presence.watch(pattern, (c) => this.#presenceFrame(c)) : undefined;
    (this.#presenceSubs ??= new Map()).set(pattern, { leave: presence.join(pattern, this.#principal.identity), unwatch });
  }

  unsubscribed(pattern: string): void {
    const s = this.#presenceSubs?.get(pattern);
    if (!s) return;
    this.#presenceSubs!.delete(pattern);
    s.unwatch?.();
    s.leave();
  }

  /** Ops the auth layer adds to the protocol; returns false for ops it does not know. */
  handleOp(op: unknown, frame: IncomingFrame, ref: unknown): boolean {
    if (op === 'auth') {
      void this.#auth(frame, ref);
      return true;
    }
    if (op === 'presence') {
      this.#presence(frame, ref);
      return true;
    }
    return false;
  }

  async #auth(frame: IncomingFrame, ref: unknown): Promise<void> {
    const s = this.#security;
    try {
      if (typeof frame.token !== 'string' || frame.token === '') throw new HeraldError('BODY_INVALID', 'auth needs a "token" string');
      // Dev mode renews its own dev tokens only (src/auth/dev-tokens.ts).
      if (s.devMode && !s.authenticator.dev?.claims(frame.token)) {
        throw new HeraldError('UNAUTHORIZED', 'no credentials are configured on this server (dev mode)');
      }
      const next = await s.authenticator.authenticate(frame.token);
      if (this.#closed) return;
      const before = this.#principal;
      if (before.identity !== undefined && next.identity !== before.identity) {
        this.#host?.close(AUTH_CLOSE.FORBIDDEN, 'a refreshed token must name the same sub');
        return;
      }
      for (const pattern of this.#host?.connectionPatterns() ?? []) {
        if (!s.maySubscribe(next, pattern)) {
          this.#host?.close(AUTH_CLOSE.FORBIDDEN, `the new token does not cover ${pattern.slice(0, 64)}`);
          return;
        }
      }
      if (before.identity === undefined && next.identity !== undefined) {
        // Authenticated after connecting: now it counts against its identity's connections.
        this.#identityLease = s.limits.identity(this.#address, next.identity);
      }
      this.#principal = next;
      if (before.identity !== next.identity) this.#rejoinPresence();
      this.#armExpiry();
      this.#host?.reply(withRef<AckFrame>({ op: 'ack', identity: next.identity ?? null, expiresAt: expiresAtText(next) }, ref));
    } catch (err) {
      const e = err instanceof HeraldError ? err : new HeraldError('UNAUTHORIZED');
      s.logDenied('/v1/ws', this.#address, e);
      this.#host?.reply(withRef<ErrorFrame>({ op: 'error', code: e.code, message: e.message }, ref));
    }
  }

  #presence(frame: IncomingFrame, ref: unknown): void {
    const channel = frame.channel;
    if (typeof channel !== 'string' || isPattern(channel)) throw new HeraldError('CHANNEL_INVALID', 'presence needs a channel name');
    const presence = this.#security.presence;
    if (!presence.enabled(channel)) throw new HeraldError('PRESENCE_NOT_ENABLED', `presence is not enabled for ${channel}`);
    this.authorizeSubscribe(channel);
    this.#host?.reply(withRef<PresenceSnapshotFrame>({ op: 'presence', ...presence.snapshot(channel) }, ref));
  }

  #presenceFrame(c: PresenceChange): void {
    this.#host?.reply({ op: c.kind, channel: c.channel, identity: c.identity });
  }

  #rejoinPresence(): void {
    const presence = this.#security.presence;
    for (const [pattern, s] of this.#presenceSubs ?? []) {
      s.leave();
      s.leave = presence.join(pattern, this.#principal.identity);
    }
  }

  #armExpiry(): void {
    clearTimeout(this.#expiry);
    this.#expiry = undefined;
    const at = this.#principal.expiresAt;
    if (at === undefined || this.#closed) return;
    const left = at - Date.now();
    this.#expiry = setTimeout(
      () => {
        if (left > MAX_TIMER_MS) this.#armExpiry();
        else this.#host?.close(AUTH_CLOSE.TOKEN_EXPIRED, 'token expired: reconnect with a fresh token');
      },
      Math.min(Math.max(0, left), MAX_TIMER_MS),
    );
    this.#expiry.unref();
  }

  /** The connection closed: its limits, presence and timers go. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#expiry);
    for (const s of this.#presenceSubs?.values() ?? []) {
      s.unwatch?.();
      s.leave();
    }
    this.#presenceSubs = undefined;
    this.#lease.release();
    this.#identityLease?.release();
  }
}

function expiresAtText(p: Principal): string | null {
  return p.expiresAt === undefined ? null : new Date(p.expiresAt).toISOString();
}

