import { HeraldError, type ErrorCode } from '../core/errors.js';
import type { Config } from '../config/schema.js';
import { isLoopback } from '../http/client-address.js';
import { OpenCounter, RateLimiter } from './rate-limiter.js';

/** `Retry-After` for a refused connection: counts drop when other connections close, not on a clock. */
export const CONNECTION_LIMIT_RETRY_AFTER_SECONDS = 5;

/** A 429 that carries its `Retry-After` (RFC 9110 10.2.3), in seconds. */
export class RateLimitedError extends HeraldError {
  readonly retryAfterSeconds: number;

  constructor(code: Extract<ErrorCode, 'RATE_LIMITED' | 'TOO_MANY_CONNECTIONS'>, message: string, retryAfterSeconds: number) {
    super(code, message);
    this.name = 'RateLimitedError';
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** One open connection's hold on the per-address and per-identity counts. Idempotent release. */
export interface ConnectionLease {
  release(): void;
}

const NO_LEASE: ConnectionLease = { release() {} };

/** A WebSocket connection's allowance of client frames (a token bucket of its own). */
export class MessageBudget {
  readonly #perSecond: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  constructor(perSecond: number, now: () => number) {
    this.#perSecond = perSecond;
    this.#now = now;
    this.#tokens = Math.max(1, perSecond);
    this.#at = now();
  }

  /** Spends one frame: false when the connection is past its rate. */
  spend(): boolean {
    const now = this.#now();
    this.#tokens = Math.min(Math.max(1, this.#perSecond), this.#tokens + ((now - this.#at) / 1000) * this.#perSecond);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/**
 * Every rate and connection limit of `limits` in config, in one place. Loopback clients are
 * exempt unless `applyToLoopback` is set, so local benchmarks and health checks are never
 * throttled; everything else is counted by client address (see trustProxy), API key or identity.
 */
export class Limits {
  readonly #cfg: Config['limits'];
  readonly #now: () => number;
  readonly #publish: RateLimiter;
  readonly #connect: RateLimiter;
  readonly #webhooks: RateLimiter;
  readonly #history: RateLimiter;
  readonly #perIp: OpenCounter;
  readonly #perIdentity: OpenCounter;

  constructor(cfg: Config['limits'], now: () => number = Date.now) {
    this.#cfg = cfg;
    this.#now = now;
    this.#publish = new RateLimiter(cfg.publishPerSecond, { now });
    this.#connect = new RateLimiter(cfg.connectPerSecond, { now });
    this.#webhooks = new RateLimiter(cfg.webhooksPerSecond, { now });
    this.#history = new RateLimiter(cfg.historyPerSecond, { now });
    this.#perIp = new OpenCounter(cfg.connectionsPerIp);
    this.#perIdentity = new OpenCounter(cfg.connectionsPerIdentity);
  }

  /** True when `address` is not limited (loopback, unless applyToLoopback). */
  exempt(address: string | undefined): boolean {
    return !this.#cfg.applyToLoopback && isLoopback(address);
  }

  /** Counts one publish request for `key` (API key, identity, or address); throws 429 past the rate. */
  publish(key: string, address: string | undefined): void {
    if (this.exempt(address)) return;
    const wait = this.#publish.take(key);
    if (wait > 0) {
      throw new RateLimitedError('RATE_LIMITED', `more than ${this.#cfg.publishPerSecond} publish requests a second`, wait);
    }
  }

  /** Counts one history read (`GET /v1/events`) for `key`; throws 429 past `historyPerSecond`. */
  history(key: string, address: string | undefined): void {
    if (this.exempt(address)) return;
    const wait = this.#history.take(key);
    if (wait > 0) {
      throw new RateLimitedError('RATE_LIMITED', `more than ${this.#cfg.historyPerSecond} history requests a second`, wait);
    }
  }

  /** Counts one inbound webhook request from `address`; throws 429 past `webhooksPerSecond`. */
  webhook(address: string | undefined): void {
    if (this.exempt(address)) return;
    const wait = this.#webhooks.take(address ?? '');
    if (wait > 0) {
      throw new RateLimitedError('RATE_LIMITED', `more than ${this.#cfg.webhooksPerSecond} webhook requests a second`, wait);
    }
  }

  /**
   * Admits a new long-lived connection (SSE or WebSocket): the connect rate of its address, then
   * the open connections of its address and of its identity. Throws 429; the lease must be
   * released when the connection closes.
   */
  connect(address: string | undefined, identity: string | undefined): ConnectionLease {
    if (this.exempt(address)) return NO_LEASE;
    const ip = address ?? '';
    const wait = this.#connect.take(ip);
    if (wait > 0) {
      throw new RateLimitedError('RATE_LIMITED', `more than ${this.#cfg.connectPerSecond} new connections a second`, wait);
    }
    if (!this.#perIp.acquire(ip)) {
      throw new RateLimitedError(
        'TOO_MANY_CONNECTIONS',
        `this address already has ${this.#cfg.connectionsPerIp} open connections`,
        CONNECTION_LIMIT_RETRY_AFTER_SECONDS,
      );
    }
    if (identity !== undefined && !this.#perIdentity.acquire(identity)) {
      this.#perIp.release(ip);
      throw this.#identityFull();
    }
    return onceLease(() => {
      this.#perIp.release(ip);
      if (identity !== undefined) this.#perIdentity.release(identity);
    });
  }

  /** Counts an open connection against `identity` alone (it authenticated after connecting). */
  identity(address: string | undefined, identity: string): ConnectionLease {
    if (this.exempt(address)) return NO_LEASE;
    if (!this.#perIdentity.acquire(identity)) throw this.#identityFull();
    return onceLease(() => this.#perIdentity.release(identity));
  }

  #identityFull(): RateLimitedError {
    return new RateLimitedError(
      'TOO_MANY_CONNECTIONS',
      `this identity already has ${this.#cfg.connectionsPerIdentity} open connections`,
      CONNECTION_LIMIT_RETRY_AFTER_SECONDS,
    );
  }

  /** The frame allowance of a new WebSocket connection, or undefined when it is not limited. */
  messageBudget(address: string | undefined): MessageBudget | undefined {
    const rate = this.#cfg.messagesPerSecondPerConnection;
    if (rate <= 0 || this.exempt(address)) return undefined;
    return new MessageBudget(rate, this.#now);
  }
}

/** A lease whose release runs once, however often it is called. */
function onceLease(release: () => void): ConnectionLease {
  let released = false;
  return {
    release: () => {
      if (released) return;
      released = true;
      release();
    },
  };
}
