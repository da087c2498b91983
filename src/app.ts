import cors from '@fastify/cors';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Broker } from './core/broker.js';
import type { EventStore } from './core/event-store.js';
import { Hub } from './core/hub.js';
import { MemoryBroker } from './brokers/memory-broker.js';
import type { Config } from './config/schema.js';
import { errorHandler } from './http/errors.js';
import { devModeGuard } from './http/guard.js';
import { compatRoutes } from './http/routes/compat.js';
import { opsRoutes } from './http/routes/ops.js';
import { pageRoutes } from './http/routes/pages.js';
import { publishRoutes } from './http/routes/publish.js';
import { streamRoutes } from './http/routes/stream.js';
import type { Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { MemoryEventStore } from './stores/memory-event-store.js';
import { SqliteEventStore } from './stores/sqlite-event-store.js';
import { SseStreams } from './transports/sse/sse-streams.js';
import { WsGateway } from './transports/ws/ws-gateway.js';

/** Chooses the log back-end: the one place that knows every store. */
export function createStore(config: Config): EventStore {
  switch (config.store.type) {
    case 'memory':
      return new MemoryEventStore();
    case 'sqlite':
      return new SqliteEventStore({
        file: config.store.sqlite.file,
        synchronous: config.store.sqlite.synchronous,
      });
  }
}

export interface Herald {
  readonly app: FastifyInstance;
  readonly hub: Hub;
  readonly metrics: Metrics;
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
  const hub = new Hub({
    store,
    broker,
    onPublished: (n, seconds) => {
      metrics.published.inc(n);
      metrics.publishLatency.observe(seconds);
    },
    onDelivered: (n) => metrics.delivered(n),
  });
  const guard = devModeGuard();
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
  });

  const app: FastifyInstance = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // Per-request lines would double the cost of every publish; errors are logged by the handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.limits.maxBodyBytes,
    // Streams are long-lived; fastify must not wait for them on close (SseStreams ends them).
    forceCloseConnections: false,
    return503OnClosing: true,
  });
  // Every body arrives as raw bytes: routes parse JSON themselves (clear error codes, and the
  // exact bytes stay available for signature checks).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.setErrorHandler(errorHandler(log));
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${req.url.split('?')[0]}` } });
  });
  void app.register(cors, {
    origin: config.cors.origins.includes('*') ? '*' : [...config.cors.origins],
    credentials: !config.cors.origins.includes('*'),
    exposedHeaders: ['idempotent-replayed', 'herald-event-id'],
  });

  let closing = false;
  void app.register(async (scope) => {
    publishRoutes(scope, hub, guard);
    streamRoutes(scope, sse, config.limits.channelsPerStream);
    compatRoutes(scope, { hub, sse, feedChannel: config.compat.feedChannel, wsChannel: config.compat.wsChannel });
    opsRoutes(scope, { hub, metrics, isClosing: () => closing });
    pageRoutes(scope);
  });

  const retention = {
    maxAgeMs: config.retention.maxAgeSeconds * 1000,
    maxEvents: config.retention.maxEvents,
    idempotencyTtlMs: config.retention.idempotencyTtlSeconds * 1000,
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
    async listen() {
      await app.listen({ port: config.port, host: config.host });
      ws.attach(app.server);
      const addr = app.server.address() as AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      return `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${addr.port}`;
    },
    close() {
      closed ??= (async () => {
        closing = true;
        clearInterval(pruner);
        const timeoutMs = config.shutdownTimeoutSeconds * 1000;
        // Stop accepting first, then end the long-lived streams so clients go elsewhere, then
        // let in-flight publishes commit, then close the log.
        const serverClosed = app.close();
        sse.closeAll();
        await ws.close(timeoutMs);
        await serverClosed;
        await hub.close();
        await broker.close();
        await store.close();
      })();
      return closed;
    },
  };
}

