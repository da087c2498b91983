import { z } from 'zod';
import { checkChannel } from '../core/channel.js';
import { DEFAULTS } from './defaults.js';
import { kafkaSchema } from './kafka-schema.js';
import { sourcesSchema } from './sources-schema.js';
import { authSchema, presenceSchema, trustProxySchema } from './auth-schema.js';

const channelName = z.string().refine((s) => {
  const c = checkChannel(s);
  return c.ok && !c.pattern;
}, 'must be a channel name (no wildcards)');
const channelPattern = z.string().refine((s) => checkChannel(s).ok, 'must be a channel name or pattern');
const seconds = z.number().nonnegative();

/** processes: the most `cluster.workers` may start (more than any machine's cores). */
export const MAX_WORKERS = 256;
const positiveInt = z.number().int().positive();

const d = DEFAULTS;
const o = DEFAULTS.outbound;

const outboundSchema = z
  .object({
    retryScheduleSeconds: z.array(seconds).min(1).max(100).default(o.retryScheduleSeconds),
    retryJitter: z.number().min(0).max(1).default(o.retryJitter),
    timeoutSeconds: z.number().positive().default(o.timeoutSeconds),
    leaseSeconds: z.number().positive().default(o.leaseSeconds),
    plannerLeaseSeconds: z.number().positive().default(o.plannerLeaseSeconds),
    concurrency: positiveInt.default(o.concurrency),
    senderThreads: z.number().int().min(0).max(16).default(o.senderThreads),
    maxConcurrencyPerEndpoint: positiveInt.default(o.maxConcurrencyPerEndpoint),
    maxRetryAfterSeconds: seconds.default(o.maxRetryAfterSeconds),
    disableAfterFailingSeconds: z.number().positive().default(o.disableAfterFailingSeconds),
    circuitBreakerFailures: positiveInt.default(o.circuitBreakerFailures),
    circuitBreakerCooldownSeconds: z.number().positive().default(o.circuitBreakerCooldownSeconds),
    secretRotationOverlapSeconds: seconds.default(o.secretRotationOverlapSeconds),
    sweepIntervalSeconds: z.number().positive().default(o.sweepIntervalSeconds),
    deliveryRetentionSeconds: z.number().positive().default(o.deliveryRetentionSeconds),
    send: z.boolean().default(o.send),
    allowPrivateTargets: z.boolean().default(o.allowPrivateTargets),
    systemChannel: channelName.default(o.systemChannel),
  })
  .strict()
  // A lease shorter than a request would let a second worker send the same delivery while the
  // first is still waiting for the answer.
  .refine((v) => v.leaseSeconds > v.timeoutSeconds, {
    message: 'must be longer than outbound.timeoutSeconds',
    path: ['leaseSeconds'],
  });

/** The config file's schema: unknown keys are errors, so a typo never passes silently. */
export const configSchema = z
  .object({
    // One switch for every store (src/stores/backend.ts); each type takes only its own keys.
    backend: z
      .discriminatedUnion('type', [
        z
          .object({
            type: z.literal('sqlite'),
            file: z.string().min(1).default(d.backend.file),
            synchronous: z.enum(['full', 'normal']).default(d.backend.synchronous),
          })
          .strict(),
        z.object({ type: z.literal('memory') }).strict(),
        z
          .object({
            type: z.literal('redis'),
            // redis://, rediss:// (TLS) or redis+sentinel://; HERALD_REDIS_URL may give it instead.
            url: z.string().min(1).optional(),
            keyPrefix: z
              .string()
              .regex(/^[A-Za-z0-9._:-]{1,64}$/, 'letters, digits and . _ : - only (it goes inside a hash tag)')
              .default(d.backend.keyPrefix),
            waitReplicas: z.number().int().min(0).max(16).default(d.backend.waitReplicas),
            waitTimeoutSeconds: z.number().positive().max(60).default(d.backend.waitTimeoutSeconds),
          })
          .strict(),
        z
          .object({
            type: z.literal('postgres'),
            // postgres://user:password@host:port/database; HERALD_DATABASE_URL may give it instead.
            url: z.string().min(1).optional(),
            schema: z
              .string()
              .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lower-case identifier (letters, digits, _)')
              .default(d.backend.schema),
            migrate: z.boolean().default(d.backend.migrate),
          })
          .strict(),
      ])
      .optional(),
    /** Deprecated: the keys before `backend`, mapped onto it by load.ts (with a warning). */
    store: z
      .object({
        type: z.enum(['sqlite', 'memory']).optional(),
        sqlite: z
          .object({ file: z.string().min(1).optional(), synchronous: z.enum(['full', 'normal']).optional() })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
    retention: z
      .object({
        maxAgeSeconds: seconds.default(d.retention.maxAgeSeconds),
        maxEvents: z.number().int().nonnegative().default(d.retention.maxEvents),
        pruneIntervalSeconds: z.number().positive().default(d.retention.pruneIntervalSeconds),
        idempotencyTtlSeconds: seconds.default(d.retention.idempotencyTtlSeconds),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        maxBodyBytes: positiveInt.default(d.limits.maxBodyBytes),
        maxFrameBytes: positiveInt.default(d.limits.maxFrameBytes),
        subscriptionsPerConnection: positiveInt.default(d.limits.subscriptionsPerConnection),
        channelsPerStream: positiveInt.default(d.limits.channelsPerStream),
        outgoingBufferBytes: positiveInt.default(d.limits.outgoingBufferBytes),
        publishPerSecond: seconds.default(d.limits.publishPerSecond),
        connectPerSecond: seconds.default(d.limits.connectPerSecond),
        webhooksPerSecond: seconds.default(d.limits.webhooksPerSecond),
        historyPerSecond: seconds.default(d.limits.historyPerSecond),
        concurrentReplays: z.number().int().nonnegative().default(d.limits.concurrentReplays),
        connectionsPerIp: z.number().int().nonnegative().default(d.limits.connectionsPerIp),
        connectionsPerIdentity: z.number().int().nonnegative().default(d.limits.connectionsPerIdentity),
        messagesPerSecondPerConnection: seconds.default(d.limits.messagesPerSecondPerConnection),
        applyToLoopback: z.boolean().default(d.limits.applyToLoopback),
        maxHeaderBytes: z.number().int().min(1_024).default(d.limits.maxHeaderBytes),
        headersTimeoutSeconds: z.number().positive().default(d.limits.headersTimeoutSeconds),
        requestTimeoutSeconds: z.number().positive().default(d.limits.requestTimeoutSeconds),
      })
      .strict()
      .prefault({}),
    dispatch: z
      .object({
        writeWindowMs: z.number().min(0).max(1_000).default(d.dispatch.writeWindowMs),
      })
      .strict()
      .prefault({}),
    sse: z
      .object({
        heartbeatSeconds: z.number().positive().default(d.sse.heartbeatSeconds),
        retryMs: z.number().int().nonnegative().default(d.sse.retryMs),
      })
      .strict()
      .prefault({}),
    websocket: z
      .object({
        clientPublish: z.union([z.boolean(), z.array(channelPattern)]).default(d.websocket.clientPublish),
        pingIntervalSeconds: z.number().positive().default(d.websocket.pingIntervalSeconds),
      })
      .strict()
      .prefault({}),
    compat: z
      .object({
        feedChannel: channelName.default(d.compat.feedChannel),
        wsChannel: channelName.default(d.compat.wsChannel),
      })
      .strict()
      .prefault({}),
    cors: z
      .object({ origins: z.array(z.string().min(1)).default(d.cors.origins) })
      .strict()
      .prefault({}),
    metrics: z
      .object({ public: z.boolean().default(d.metrics.public) })
      .strict()
      .prefault({}),
    shutdownTimeoutSeconds: z.number().positive().default(d.shutdownTimeoutSeconds),
    cluster: z
      .object({
        workers: z
          .union([z.number().int().min(1).max(MAX_WORKERS), z.literal('auto')], {
            error: `must be an integer from 1 to ${MAX_WORKERS}, or "auto"`,
          })
          .default(d.cluster.workers),
      })
      .strict()
      .prefault({}),
    // HTTPS with HTTP/2 (and HTTP/1.1 for older clients) on Herald's own port: PEM file paths,
    // read at start (src/http/tls.ts). HERALD_TLS_CERT and HERALD_TLS_KEY may give them instead.
    tls: z.object({ cert: z.string().min(1), key: z.string().min(1) }).strict().optional(),
    trustProxy: trustProxySchema,
    auth: authSchema.prefault({}),
    presence: presenceSchema.prefault({}),
    outbound: outboundSchema.prefault({}),
    sources: sourcesSchema.default({}),
    kafka: kafkaSchema.optional(),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(d.log.level),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type FileConfig = z.infer<typeof configSchema>;

/** A backend as the file gives it (a redis one may still lack its URL). */
export type FileBackend = Exclude<FileConfig['backend'], undefined>;

/**
 * The backend union, resolved: the file's `backend`, else its deprecated `store`, else the
 * default; a redis or postgres backend always has its URL (from the file, HERALD_REDIS_URL or
 * HERALD_DATABASE_URL).
 */
export type BackendConfig =
  | Exclude<FileBackend, { type: 'redis' | 'postgres' }>
  | (Extract<FileBackend, { type: 'redis' }> & { url: string })
  | (Extract<FileBackend, { type: 'postgres' }> & { url: string });

/** The whole runtime config: the file's, plus what only the environment sets. */
export interface Config extends Omit<FileConfig, 'backend' | 'store'> {
  backend: BackendConfig;
  host: string;
  port: number;
  dataDir: string;
  /** One line per deprecated key the file used, naming its replacement; logged at start. */
  deprecations: readonly string[];
}
