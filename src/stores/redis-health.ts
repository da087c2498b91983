import type { Redis } from 'ioredis';

/** milliseconds between PINGs on a connection that looks ready: how long a silent Redis can go unnoticed. */
export const REDIS_PROBE_INTERVAL_MS = 1_000;
/**
 * milliseconds a PING (or a handshake after a TCP connect) may take before the connection is
 * declared dead and reconnected. A healthy Redis answers in well under a millisecond; this
 * leaves room for a slow command ahead of the PING on the same connection.
 */
export const REDIS_PROBE_TIMEOUT_MS = 2_000;

export interface RedisHealthOptions {
  /** the connection's name in log lines */
  name: string;
  logger?: { warn(obj: object, msg: string): void };
  probeIntervalMs?: number;
  probeTimeoutMs?: number;
}

/**
 * Whether a Redis connection is usable, for `/readyz`: `ready` follows ioredis's events
 * ('ready' makes it true; 'close', 'reconnecting' and 'end' false) and a PING probe every
 * `probeIntervalMs`. Events alone miss a connection that is open but answers nothing (a Redis
 * stopped with SIGSTOP, a network path that drops packets without a reset, a proxy holding a
 * dead backend): TCP keep-alive takes minutes to notice. So a PING, or a handshake, without an
 * answer within `probeTimeoutMs` makes the connection not ready and disconnects it; the
 * client's retry strategy then reconnects, and the next 'ready' makes it ready again.
 */
export class RedisHealth {
  readonly #redis: Redis;
  readonly #opts: RedisHealthOptions;
  readonly #timeoutMs: number;
  readonly #timer: NodeJS.Timeout;
  #ready: boolean;
  #reason: string | undefined;
  #probing = false;
  /** when the client last entered 'connect' (TCP up, handshake running), to find a handshake that hangs */
  #connectingSince: number | undefined;
  readonly #listeners: Array<[string, (err: Error) => void]>;

  constructor(redis: Redis, opts: RedisHealthOptions) {
    this.#redis = redis;
    this.#opts = opts;
    this.#timeoutMs = opts.probeTimeoutMs ?? REDIS_PROBE_TIMEOUT_MS;
    this.#ready = redis.status === 'ready';
    this.#reason = this.#ready ? undefined : `connection is ${redis.status}`;
    this.#listeners = [
      ['ready', () => this.#set(true, undefined)],
      ['connect', () => (this.#connectingSince = Date.now())],
      ['close', () => this.#set(false, 'connection closed')],
      ['reconnecting', () => this.#set(false, 'reconnecting')],
      ['end', () => this.#set(false, 'connection ended (no more reconnects)')],
      ['error', (err: Error) => (this.#reason = this.#ready ? this.#reason : err.message)],
    ];
    for (const [event, fn] of this.#listeners) redis.on(event, fn);
    this.#timer = setInterval(() => void this.#probe(), opts.probeIntervalMs ?? REDIS_PROBE_INTERVAL_MS);
    this.#timer.unref();
  }

  /** Whether commands can be expected to succeed now. */
  get ready(): boolean {
    return this.#ready;
  }

  /** Why the connection is not ready (the last event or error), or undefined when it is. */
  get reason(): string | undefined {
    return this.#ready ? undefined : this.#reason;
  }

  /** Stops probing and listening; the client itself is the caller's to disconnect. Idempotent. */
  close(): void {
    clearInterval(this.#timer);
    for (const [event, fn] of this.#listeners) this.#redis.off(event, fn);
  }

  #set(ready: boolean, reason: string | undefined): void {
    this.#ready = ready;
    this.#reason = reason;
    // Only a client still in 'connect' has a handshake running.
    if (this.#redis.status !== 'connect') this.#connectingSince = undefined;
  }

  async #probe(): Promise<void> {
    const redis = this.#redis;
    if (redis.status === 'connect' && this.#connectingSince !== undefined && Date.now() - this.#connectingSince > this.#timeoutMs) {
      this.#dead(`no answer to the handshake within ${this.#timeoutMs} ms`);
      return;
    }
    if (redis.status !== 'ready' || this.#probing) return;
    this.#probing = true;
    let timer: NodeJS.Timeout | undefined;
    const silent = new Promise<'silent'>((resolve) => {
      timer = setTimeout(() => resolve('silent'), this.#timeoutMs);
    });
    try {
      const answer = await Promise.race([redis.ping(), silent]);
      if (answer === 'silent') this.#dead(`no answer to PING within ${this.#timeoutMs} ms`);
    } catch (err) {
      // A PING refused while the connection drops: the events say the rest.
      if (redis.status !== 'ready') this.#set(false, (err as Error).message);
    } finally {
      clearTimeout(timer);
      this.#probing = false;
    }
  }

  /** The connection is open but answers nothing: not ready, and reconnected (the retry strategy takes over). */
  #dead(reason: string): void {
    this.#set(false, reason);
    this.#connectingSince = undefined;
    this.#opts.logger?.warn({ redis: this.#opts.name }, `redis: ${reason}; reconnecting`);
    this.#redis.disconnect(true);
  }
}
