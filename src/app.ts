import cors from '@fastify/cors';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { accessSync, constants as fsConstants } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import type { Broker } from './core/broker.js';
import type { EventStore } from './core/event-store.js';
import { Hub } from './core/hub.js';
import { MemoryBroker } from './brokers/memory-broker.js';
import type { Config } from './config/schema.js';
import { errorHandler } from './http/errors.js';
import { corsOptions, requireJsonBody } from './http/local-api.js';
import { Security } from './auth/security.js';
import { presenceLookup } from './auth/presence-lookup.js';
import { StreamGate } from './auth/stream-gate.js';
import { admitUpgrade, rejectUpgrade } from './auth/ws-admission.js';
import { serverOptions } from './http/server-options.js';
import { compatRoutes } from './http/routes/compat.js';
import { opsRoutes } from './http/routes/ops.js';
import { pageRoutes } from './http/routes/pages.js';
import { presenceRoutes } from './http/routes/presence.js';
import { publishRoutes } from './http/routes/publish.js';
import { streamRoutes } from './http/routes/stream.js';
import type { Logger } from './observability/logger.js';
import { Metrics, type OutboundAttempt } from './observability/metrics.js';
import { StoreHealth } from './observability/store-health.js';
import { MemoryEventStore } from './stores/memory-event-store.js';
import { SqliteEventStore } from './stores/sqlite-event-store.js';
import { sqliteWriteProbe } from './stores/sqlite-write-probe.js';
import { KafkaSource } from './sources/kafka-source.js';
import { SseStreams } from './transports/sse/sse-streams.js';
import { WsGateway } from './transports/ws/ws-gateway.js';
import { webhookInRoutes } from './http/routes/webhooks-in.js';
import { demoOrderRoutes } from './http/routes/demo-orders.js';
import { RECEIPTS_MAX_PER_SOURCE, WebhookReceiver } from './transports/webhook-in/webhook-receiver.js';
import { outboundRoutes } from './http/routes/outbound.js';
import type { DeliveryStore } from './transports/webhook-out/delivery-store.js';
import { MemoryDeliveryStore } from './transports/webhook-out/memory-delivery-store.js';
import { OutboundWebhooks } from './transports/webhook-out/outbound-webhooks.js';
import { SqliteDeliveryStore } from './transports/webhook-out/sqlite-delivery-store.js';

/**
 * Herald cannot start for a reason the operator can fix (a database it cannot open). The message
 * is one line that names the config key or file and the cause; the CLI prints it without a stack.
 */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}

/**
 * Why SQLite may not write `file` or its folder (it needs both: the WAL and the shared-memory
 * file sit beside the database), as a clause to append to an error; '' when both are writable.
 */
function writeProblem(file: string): string {
  for (const path of [file, dirname(file)]) {
    try {
      accessSync(path, fsConstants.W_OK);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== 'ENOENT') return `; ${path} is not writable (${e.code ?? e.message})`;
    }
  }
  return '';
}

/** Chooses the log back-end: the one place that knows every store. */
export function createStore(config: Config): EventStore {
  switch (config.store.type) {
    case 'memory':
      return new MemoryEventStore();
    case 'sqlite':
      try {
        return new SqliteEventStore({
          file: config.store.sqlite.file,
          synchronous: config.store.sqlite.synchronous,
        });
      } catch (err) {
        // A corrupt file (SQLITE_NOTADB), a read-only one (SQLITE_READONLY), a folder we may not
        // write (EACCES): the operator needs the path and the cause, not a stack trace.
        const e = err as { message?: string; code?: string };
        const code = e.code !== undefined && !String(e.message).includes(e.code) ? ` (${e.code})` : '';
        const file = config.store.sqlite.file;
        throw new StartupError(
          `cannot open the database file ${file} (store.sqlite.file): ${e.message ?? String(err)}${code}${writeProblem(file)}`,
          { cause: err },
        );
      }
  }
}

/** The outbound delivery queue lives in the same store (and file) as the log it is owed from. */
export function createDeliveryStore(store: EventStore): DeliveryStore {
  return store instanceof SqliteEventStore ? new SqliteDeliveryStore(store.database, { sync: () => store.sync() }) : new MemoryDeliveryStore();
}

export interface Herald {
  readonly app: FastifyInstance;
  readonly hub: Hub;
  readonly metrics: Metrics;
  /** Credentials, permissions, limits and presence (src/auth/security.ts). */
  readonly security: Security;
  /** Starts listening; resolves to the base URL (`http://host:port`). */
  listen(): Promise<string>;
  /** Graceful shutdown: one path, idempotent, bounded by `shutdownTimeoutSeconds`. */
  close(): Promise<void>;
}

/** Wires a Herald node from a validated config. Nothing listens until `listen()`. */
export function createHerald(config: Config, log: Logger): Herald {
  const metrics = new Metrics();
  const store = createStore(config);
  const broker: Broker = new MemoryBroker();
  const storeHealth = new StoreHealth({ log, probe: store instanceof SqliteEventStore ? sqliteWriteProbe(store.database) : undefined });
  const hub = new Hub({
    store,
    broker,
    onAppendFailed: (err) => storeHealth.failed(err),
    onAppended: () => storeHealth.succeeded(),
    onPublished: (n, seconds) => {
      metrics.published.inc(n);
      metrics.publishLatency.observe(seconds);
    },
    onDelivered: (n) => metrics.delivered(n),
    writeWindowMs: config.dispatch.writeWindowMs,
    maxConcurrentReplays: config.limits.concurrentReplays,
  });
  const kafka = config.kafka && new KafkaSource({ config: config.kafka, hub, log, registry: metrics.registry });
  const security = new Security(config, log);
  const guard = security.guard;
  const gate = new StreamGate(security);
  const webhooks = new WebhookReceiver({ hub, log, metrics, sources: config.sources });
  let recordAttempt: ((a: OutboundAttempt) => void) | undefined;
  const outbound = new OutboundWebhooks({
    hub,
    store: createDeliveryStore(store),
    config: config.outbound,
    log,
    onAttempt: (d, a) =>
      recordAttempt?.({
        outcome: a.outcome.status,
        durationMs: a.attempt.durationMs,
        plannedAt: d.createdAt,
        endedAt: a.attempt.at + a.attempt.durationMs,
      }),
  });
  recordAttempt = metrics.trackOutbound(outbound);
  const sse = new SseStreams({
    hub,
    metrics,
    log,
    heartbeatMs: config.sse.heartbeatSeconds * 1000,
    retryMs: config.sse.retryMs,
    maxBacklogBytes: config.limits.outgoingBufferBytes,
  });
  const ws = new WsGateway({
    hub,
    log,
    metrics,
    maxFrameBytes: config.limits.maxFrameBytes,
    maxBacklogBytes: config.limits.outgoingBufferBytes,
    maxSubscriptions: config.limits.subscriptionsPerConnection,
    clientPublish: config.websocket.clientPublish,
    pingIntervalMs: config.websocket.pingIntervalSeconds * 1000,
    compatChannel: config.compat.wsChannel,
    admit: (req, channels) => admitUpgrade(security, req, channels),
    reject: rejectUpgrade,
  });

  const app: FastifyInstance = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // Per-request lines would double the cost of every publish; errors are logged by the handler.
    // No request logs and no onResponse hook: SSE streams drop fastify's response listener
    // (FASTIFY_RESPONSE_LISTENER in src/transports/sse/sse-internals.ts).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.limits.maxBodyBytes,
    // Streams are long-lived; fastify must not wait for them on close (SseStreams ends them).
    forceCloseConnections: false,
    return503OnClosing: true,
    // Router errors (bad URL encoding, over-long path parameter) answer in the registry's shape.
    frameworkErrors: errorHandler(log),
    // Header size and header/request timeouts (oversized headers, slow-loris clients).
    ...serverOptions(config),
  });
  // Every body arrives as raw bytes: routes parse JSON themselves (clear error codes, and the
  // exact bytes stay available for signature checks).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.setErrorHandler(errorHandler(log));
  // Resolves the Authorization header once per request; applies the inbound webhook rate.
  app.addHook('onRequest', security.onRequest);
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${req.url.split('?')[0]}` } });
  });
  // The publish and operator APIs take JSON only (no CORS-simple bodies: src/http/local-api.ts).
  app.addHook('onRequest', requireJsonBody);
  void app.register(cors, corsOptions(config, security.devMode));

  let closing = false;
  void app.register(async (scope) => {
    publishRoutes(scope, hub, guard);
    streamRoutes(scope, sse, config.limits.channelsPerStream, gate);
    compatRoutes(scope, { hub, sse, feedChannel: config.compat.feedChannel, wsChannel: config.compat.wsChannel, guard, gate });
    presenceRoutes(scope, presenceLookup(security));
    opsRoutes(scope, {
      hub,
      metrics,
      isClosing: () => closing,
      checks: kafka ? [kafka] : [],
      storeWritable: () => storeHealth.check(),
      // Metrics name sources, channels' traffic and queue depths: with auth configured they are
      // an operator's, unless metrics.public opens them to a scraper.
      metricsReader: (req) => {
        if (!guard.devMode && !config.metrics.public) guard.operator(req);
      },
    });
    pageRoutes(scope);
    webhookInRoutes(scope, { receiver: webhooks, guard, log });
    demoOrderRoutes(scope, { sources: webhooks.sources, guard });
    outboundRoutes(scope, outbound, guard);
  });

  const retention = {
    maxAgeMs: config.retention.maxAgeSeconds * 1000,
    maxEvents: config.retention.maxEvents,
    idempotencyTtlMs: config.retention.idempotencyTtlSeconds * 1000,
    maxReceiptsPerSource: RECEIPTS_MAX_PER_SOURCE,
  };
  const pruner = setInterval(() => {
    store.prune(retention, Date.now()).then(
      (n) => n > 0 && log.info({ deleted: n }, 'retention: pruned events'),
      (err: unknown) => log.error({ err }, 'retention: prune failed'),
    );
  }, config.retention.pruneIntervalSeconds * 1000);
  pruner.unref();

  let closed: Promise<void> | undefined;
  return {
    app,
    hub,
    metrics,
    security,
    async listen() {
      await app.listen({ port: config.port, host: config.host });
      ws.attach(app.server);
      await outbound.start();
      kafka?.start();
      const addr = app.server.address() as AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      return `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${addr.port}`;
    },
    close() {
      closed ??= (async () => {
        closing = true;
        clearInterval(pruner);
        const timeoutMs = config.shutdownTimeoutSeconds * 1000;
        // The consumer finishes its batch through the hub, commits and leaves its group.
        const kafkaClosed = kafka?.close(timeoutMs);
        // Stop accepting first, then end the long-lived streams so clients go elsewhere, then
        // let in-flight publishes commit, then close the log.
        const serverClosed = app.close();
        sse.closeAll();
        await ws.close(timeoutMs);
        security.close();
        await serverClosed;
        await webhooks.close();
        await kafkaClosed;
        await hub.close();
        await broker.close();
        // Outbound workers stop before the log they share a database with closes.
        await outbound.close(timeoutMs / 2);
        await store.close();
      })();
      return closed;
    },
  };
}

