import { Redis, type RedisOptions } from 'ioredis';
import { parseRedisUrl, redactRedisUrl } from './redis-url.js';

export { parseRedisUrl, redactRedisUrl } from './redis-url.js';
export { RedisHealth, REDIS_PROBE_INTERVAL_MS, REDIS_PROBE_TIMEOUT_MS, type RedisHealthOptions } from './redis-health.js';

/** milliseconds before the first reconnect attempt; each later one doubles, up to the cap below. */
export const REDIS_RETRY_MIN_MS = 100;
/** milliseconds between reconnect attempts at most: an outage of any length is noticed within this of its end. */
export const REDIS_RETRY_MAX_MS = 2_000;
/** share of each reconnect delay drawn at random, so a fleet of nodes does not reconnect in lockstep. */
const REDIS_RETRY_JITTER_RATIO = 0.5;
/**
 * reconnects a command in flight when its connection broke waits for before it is rejected: none.
 * With any other number ioredis keeps such a command (it was written, so it is not in the
 * offline queue) and resends it once a reconnect succeeds, however long that takes: a publish
 * would hang through an outage instead of getting its 503. Whether Redis applied it is
 * unknown either way; the caller's retry with its idempotency key settles that.
 */
export const REDIS_MAX_RETRIES_PER_REQUEST = 0;
/** milliseconds a TCP connect (and the handshake after it) may take before the attempt is dropped. */
export const REDIS_CONNECT_TIMEOUT_MS = 2_000;
/** milliseconds of silence before the first TCP keep-alive probe: a peer gone without a FIN is found. */
export const REDIS_KEEPALIVE_MS = 10_000;
/** milliseconds a closing socket may take to say goodbye before it is destroyed (a peer that answers nothing never does). */
const REDIS_DISCONNECT_TIMEOUT_MS = 500;
/** milliseconds a sentinel may take to answer which node is the primary before the next sentinel is asked. */
const REDIS_SENTINEL_COMMAND_TIMEOUT_MS = 1_000;

/** What `connectRedis` logs through: pino's Logger fits. */
export interface RedisLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ConnectRedisOptions {
  /** the connection's name in CLIENT LIST (`herald:<role>`), and in log lines */
  name: string;
  logger?: RedisLogger;
}

/**
 * milliseconds before reconnect attempt `attempt` (1, 2, ...): exponential from
 * REDIS_RETRY_MIN_MS, capped at REDIS_RETRY_MAX_MS, the last REDIS_RETRY_JITTER_RATIO of it
 * random ("full jitter" would let one attempt follow another at once; half keeps a floor).
 */
export function redisRetryDelayMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(REDIS_RETRY_MAX_MS, REDIS_RETRY_MIN_MS * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling * (1 - REDIS_RETRY_JITTER_RATIO * random()));
}

/**
 * A primary demoted to a replica by a failover keeps its connections open and answers writes
 * with `READONLY You can't write against a read only replica`: reconnect, so that the connector
 * asks the sentinels for the new primary. The command itself fails (the caller answers 503)
 * rather than being resent, since with the offline queue off it could not wait for the new
 * connection anyway.
 */
function reconnectOnReadonly(err: Error): boolean {
  return err.message.startsWith('READONLY');
}

/** The URL each client of `connectRedis` was made from, password cut out, for `waitReady`'s message. */
const redactedUrls = new WeakMap<Redis, string>();

/**
 * A client for a gateway that must fail fast and heal by itself:
 *
 * - until the first connection is ready, commands queue (start-up runs before Redis answers;
 *   `waitReady` bounds it); from then on `enableOfflineQueue` is off, so a command while the
 *   connection is down rejects at once (`Stream isn't writeable`) and a publish gets its 503
 *   now instead of hanging;
 * - reconnects forever with capped, jittered backoff (`redisRetryDelayMs`);
 * - a command in flight when the connection breaks is rejected when it breaks
 *   (REDIS_MAX_RETRIES_PER_REQUEST), not resent after a reconnect;
 * - READONLY (a failed-over primary) reconnects; with `redis+sentinel://` the client also
 *   listens to the sentinels' `+switch-master` and moves to the new primary without waiting for
 *   an error;
 * - TCP keep-alive and a connection name (`CLIENT LIST` shows which node and role it is).
 *
 * A connection that stays open but answers nothing is `RedisHealth`'s to find (PING probe).
 * Errors are logged once per outage, with the URL's password cut out; the caller owns the
 * client and `disconnect()`s it.
 */
export function connectRedis(url: string, opts: ConnectRedisOptions): Redis {
  const where = redactRedisUrl(url);
  const options: RedisOptions = {
    ...parseRedisUrl(url),
    connectionName: opts.name,
    enableOfflineQueue: true,
    maxRetriesPerRequest: REDIS_MAX_RETRIES_PER_REQUEST,
    retryStrategy: (attempt) => redisRetryDelayMs(attempt),
    reconnectOnError: reconnectOnReadonly,
    connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
    disconnectTimeout: REDIS_DISCONNECT_TIMEOUT_MS,
    keepAlive: REDIS_KEEPALIVE_MS,
  };
  if (options.sentinels) {
    options.sentinelRetryStrategy = (attempt) => redisRetryDelayMs(attempt);
    options.sentinelCommandTimeout = REDIS_SENTINEL_COMMAND_TIMEOUT_MS;
    options.failoverDetector = true;
  }
  const redis = new Redis(options);
  redactedUrls.set(redis, where);
  redis.once('ready', () => {
    redis.options.enableOfflineQueue = false;
  });

  // One line when an outage starts and one when it ends, however many attempts lie between.
  let downSince: number | undefined;
  redis.on('error', (err: Error & { code?: string }) => {
    if (downSince !== undefined) return;
    downSince = Date.now();
    opts.logger?.warn(
      { redis: opts.name, url: where, code: err.code, cause: redactRedisUrl(err.message) },
      'redis: connection failed; commands fail until it is back',
    );
  });
  redis.on('ready', () => {
    if (downSince === undefined) return;
    opts.logger?.info({ redis: opts.name, url: where, downMs: Date.now() - downSince }, 'redis: connected again');
    downSince = undefined;
  });
  return redis;
}

/**
 * Resolves once `redis` is ready; rejects after `timeoutMs` with a message naming the URL
 * (without its password) and the last error seen. For start-up: a node whose Redis never
 * answers exits with a reason instead of serving 503s.
 */
export function waitReady(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  const where = redactedUrls.get(redis) ?? describe(redis.options);
  if (redis.status === 'end') return Promise.reject(new Error(`Redis at ${where} is closed (disconnect() was called)`));
  return new Promise((resolve, reject) => {
    let lastError: Error | undefined;
    const onError = (err: Error): void => {
      lastError = err;
    };
    const onReady = (): void => {
      done();
      resolve();
    };
    const onEnd = (): void => {
      done();
      reject(new Error(`Redis at ${where} closed before it was ready${because(lastError)}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`Redis at ${where} was not ready within ${timeoutMs} ms${because(lastError)}`));
    }, timeoutMs);
    function done(): void {
      clearTimeout(timer);
      redis.off('error', onError);
      redis.off('ready', onReady);
      redis.off('end', onEnd);
    }
    redis.on('error', onError);
    redis.once('ready', onReady);
    redis.once('end', onEnd);
  });
}

/** host:port (or the sentinels and master name) of a client `connectRedis` did not make. */
function describe(options: RedisOptions): string {
  if (options.sentinels) return `sentinels ${options.sentinels.map((s) => `${s.host}:${s.port}`).join(',')} master ${options.name}`;
  return `${options.host}:${options.port}`;
}

function because(err: Error | undefined): string {
  return err ? ` (last error: ${redactRedisUrl(err.message)})` : '';
}
