import cors from '@fastify/cors';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import type { Broker } from './core/broker.js';
import { Hub } from './core/hub.js';
import { MemoryBroker } from './brokers/memory-broker.js';
import { IpcBroker, type IpcBrokerOptions } from './brokers/ipc-broker.js';
import { PostgresBroker } from './brokers/postgres-broker.js';
import { RedisBroker } from './brokers/redis-broker.js';
import type { Config } from './config/schema.js';
import { errorHandler } from './http/errors.js';
import { corsOptions, requireJsonBody } from './http/local-api.js';
import { Security } from './auth/security.js';
import { presenceLookup } from './auth/presence-lookup.js';
import { StreamGate } from './auth/stream-gate.js';
import { admitUpgrade, rejectUpgrade } from './auth/ws-admission.js';
import { serverOptions } from './http/server-options.js';
import { configureSecureServer, readTlsFiles, secureServerOptions } from './http/tls.js';
import type { Http2SecureServer } from 'node:http2';
import { compatRoutes } from './http/routes/compat.js';
import { opsRoutes } from './http/routes/ops.js';
import { pageRoutes } from './http/routes/pages.js';
import { presenceRoutes } from './http/routes/presence.js';
import { publishRoutes } from './http/routes/publish.js';
import { streamRoutes } from './http/routes/stream.js';
import type { Logger } from './observability/logger.js';
import { Metrics, type OutboundAttempt } from './observability/metrics.js';
import { StoreHealth } from './observability/store-health.js';
import { createBackend, type BackendSet } from './stores/backend.js';
import { KafkaSource } from './sources/kafka-source.js';
import { SseStreams } from './transports/sse/sse-streams.js';
import { WsGateway } from './transports/ws/ws-gateway.js';
import { webhookInRoutes } from './http/routes/webhooks-in.js';
import { demoOrderRoutes } from './http/routes/demo-orders.js';
import { devTokenRoutes } from './http/routes/dev-token.js';
import { RECEIPTS_MAX_PER_SOURCE, WebhookReceiver } from './transports/webhook-in/webhook-receiver.js';
import { outboundRoutes } from './http/routes/outbound.js';
import { channelRoutes } from './http/routes/channels.js';
import { consoleRoutes } from './http/routes/console.js';
import { ChannelActivity } from './core/channel-activity.js';
import { ConnectionRegistry } from './core/connections.js';
import { NodeHeartbeat, type NodeRecord } from './core/nodes.js';
import { nodeRoutes } from './http/routes/nodes.js';
import { OutboundWebhooks } from './transports/webhook-out/outbound-webhooks.js';

export { StartupError } from './core/errors.js';

export interface Herald {
  readonly app: FastifyInstance;
  readonly hub: Hub;
  /** The stores this node runs on (src/stores/backend.ts), for operations and tests. */
  readonly backend: BackendSet;
  readonly metrics: Metrics;
  /** Credentials, permissions, limits and presence (src/auth/security.ts). */
  readonly security: Security;
  /** Starts listening; resolves to the base URL (`http://host:port`, `https://` with `tls`). */
  listen(): Promise<string>;
  /** Graceful shutdown: one path, idempotent, bounded by `shutdownTimeoutSeconds`. */
  close(): Promise<void>;
}

/** Parts a caller may supply instead of the ones the config chooses. */
export interface HeraldParts {
  /** How this node learns that the log moved (default: the in-process MemoryBroker). */
  broker?: Broker;
  /** In a worker of `herald --workers N`: the channel to the primary, for an IpcBroker. */
  ipc?: Pick<IpcBrokerOptions, 'send' | 'listen'>;
}

/** Wires a Herald node from a validated config. Nothing listens until `listen()`. */
export function createHerald(config: Config, log: Logger, parts: HeraldParts = {}): Herald {
  const metrics = new Metrics();
  const backend = createBackend(
    config.backend,
    { patterns: config.presence.channels, leaveDelayMs: config.presence.leaveDelaySeconds * 1000 },
    { logger: log, idempotencyTtlMs: config.retention.idempotencyTtlSeconds * 1000 },
  );
  const onIpcError = (err: unknown) => log.error({ err }, 'could not read the log after a wake-up');
  // Nodes on a shared backend follow the shared log (each worker of `--workers N` is one such
  // node); workers on one SQLite file hear of each other's appends through the primary.
  const broker: Broker =
    parts.broker ??
    (backend.shared
      ? new RedisBroker(backend.shared)
      : backend.postgres
        ? new PostgresBroker({ ...backend.postgres, store: backend.log })
        : parts.ipc
        ? new IpcBroker({ ...parts.ipc, log: backend.log, onError: onIpcError })
        : new MemoryBroker());
  const storeHealth = new StoreHealth({ log, probe: backend.writeProbe });
  // This node's connections and the log's per-channel rates, for the operator's channel APIs.
  const connections = new ConnectionRegistry();
  const activity = new ChannelActivity();
  // This node's totals for its heartbeat record (the metrics keep the same counts for scrapers).
  const counts = { published: 0, delivered: 0 };
  const hub = new Hub({
    store: backend.log,
    broker,
    onAppendFailed: (err) => storeHealth.failed(err),
    onAppended: () => storeHealth.succeeded(),
    onPublished: (n, seconds) => {
      counts.published += n;
      metrics.published.inc(n);
      metrics.publishLatency.observe(seconds);
    },
    onDelivered: (n) => {
      counts.delivered += n;
      metrics.delivered(n);
    },
    onDispatch: (events) => {
      for (const e of events) activity.count(e.channel);
    },
    onBrokerFailure: (err, first) => {
      metrics.brokerFailures.inc();
      // Once per outage: a down broker fails every retry, and the log must stay readable.
      if (first) log.error({ err }, 'broker unavailable: publishes answer 503 and /readyz is not ready until it is back');
    },
    onBrokerRecovered: () => log.info('broker available again'),
    onGapFillFailure: (err) => log.error({ err }, 'could not read the log to fill a gap the broker left'),
    onNewLog: (epoch) =>
      log.error({ epoch }, 'the log was replaced (lost or rolled back on the backend): every subscriber got the epoch_changed reset'),
    writeWindowMs: config.dispatch.writeWindowMs,
    maxConcurrentReplays: config.limits.concurrentReplays,
  });
  const kafka = config.kafka && new KafkaSource({ config: config.kafka, hub, log, registry: metrics.registry });
  const security = new Security(config, log, Date.now, backend.presence);
  const guard = security.guard;
  const gate = new StreamGate(security);
  const webhooks = new WebhookReceiver({ hub, inbound: backend.inbound, log, metrics, sources: config.sources });
  let recordAttempt: ((a: OutboundAttempt) => void) | undefined;
  const outbound = new OutboundWebhooks({
    hub,
    store: backend.deliveries,
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
  // This node as the others see it (GET /v1/nodes), under its name on the outbound leases.
  const startedAt = Date.now();
  const nodeRecord = async (): Promise<NodeRecord> => {
    const head = await hub.head();
    const dispatchedSeq = hub.dispatchedSeq ?? head.lastSeq;
    const byTransport: Record<string, number> = { sse: 0, sse_compat: 0, ws: 0, ws_compat: 0 };
    for (const c of connections.list()) byTransport[c.transport] = (byTransport[c.transport] ?? 0) + 1;
    return {
      id: outbound.owner,
      host: hostname(),
      pid: process.pid,
      startedAt,
      lastSeenAt: Date.now(),
      connections: byTransport,
      subscriptions: hub.subscriptionCount,
      published: counts.published,
      delivered: counts.delivered,
      lag: { headSeq: head.lastSeq, dispatchedSeq, events: Math.max(0, head.lastSeq - dispatchedSeq) },
    };
  };
  const heartbeat = new NodeHeartbeat({
    directory: backend.nodes,
    snapshot: nodeRecord,
    // Once per outage; the backend's own checks (/readyz) say why.
    onError: (err) => log.warn({ err }, 'could not write this node\'s heartbeat record (GET /v1/nodes); trying again at each beat'),
  });
  const sse = new SseStreams({
    hub,
    metrics,
    log,
    heartbeatMs: config.sse.heartbeatSeconds * 1000,
    retryMs: config.sse.retryMs,
    maxBacklogBytes: config.limits.outgoingBufferBytes,
    connections,
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
    connections,
  });

  // Read before anything listens: a missing or unreadable file stops the start, naming its key.
  const tls = config.tls && readTlsFiles(config.tls);
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
    // HTTPS on this port: HTTP/2, and HTTP/1.1 for clients without it (src/http/tls.ts). Typed
    // as plain HTTP on purpose: routes take node:http's request and response, and over HTTP/2
    // node's compatibility objects stand in for them (differences: src/transports/http2-compat.ts).
    ...(tls ? (secureServerOptions(config, tls) as object) : {}),
  });
  const closeHttp2Sessions = tls ? configureSecureServer(app.server as unknown as Http2SecureServer, config) : undefined;
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
      checks: [...(backend.check ? [backend.check] : []), hub.brokerCheck, ...(kafka ? [kafka] : [])],
      storeWritable: () => storeHealth.check(),
      // Metrics name sources, channels' traffic and queue depths: with auth configured they are
      // an operator's, unless metrics.public opens them to a scraper.
      metricsReader: (req) => {
        if (!guard.devMode && !config.metrics.public) guard.operator(req);
      },
    });
    pageRoutes(scope);
    webhookInRoutes(scope, { receiver: webhooks, guard, log, epoch: () => hub.epoch() });
    demoOrderRoutes(scope, { sources: webhooks.sources, guard });
    devTokenRoutes(scope, { dev: security.authenticator.dev, guard });
    outboundRoutes(scope, outbound, guard, hub);
    channelRoutes(scope, { connections, activity, guard });
    nodeRoutes(scope, { directory: backend.nodes, self: nodeRecord, guard });
    consoleRoutes(scope);
  });

  const retention = {
    maxAgeMs: config.retention.maxAgeSeconds * 1000,
    maxEvents: config.retention.maxEvents,
    idempotencyTtlMs: config.retention.idempotencyTtlSeconds * 1000,
    maxReceiptsPerSource: RECEIPTS_MAX_PER_SOURCE,
  };
  const pruner = setInterval(() => {
    backend.log.prune(retention, Date.now()).then(
      (n) => n > 0 && log.info({ deleted: n }, 'retention: pruned events'),
      (err: unknown) => log.error({ err }, 'retention: prune failed'),
    );
  }, config.retention.pruneIntervalSeconds * 1000);
  pruner.unref();

  let closed: Promise<void> | undefined;
  return {
    app,
    hub,
    backend,
    metrics,
    security,
    async listen() {
      await backend.ready();
      // A node takes traffic once it knows where the shared log stands (see RedisBroker.started).
      if (broker instanceof RedisBroker || broker instanceof PostgresBroker) await broker.started;
      await app.listen({ port: config.port, host: config.host });
      ws.attach(app.server);
      await outbound.start();
      kafka?.start();
      await heartbeat.start();
      const addr = app.server.address() as AddressInfo;
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      return `${tls ? 'https' : 'http'}://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${addr.port}`;
    },
    close() {
      closed ??= (async () => {
        closing = true;
        clearInterval(pruner);
        // Leaves the node list at once, while the backend is still open.
        const heartbeatStopped = heartbeat.stop();
        const timeoutMs = config.shutdownTimeoutSeconds * 1000;
        // The consumer finishes its batch through the hub, commits and leaves its group.
        const kafkaClosed = kafka?.close(timeoutMs);
        // Stop accepting first, then end the long-lived streams so clients go elsewhere, then
        // let in-flight publishes commit, then close the log.
        const serverClosed = app.close();
        sse.closeAll();
        closeHttp2Sessions?.();
        await ws.close(timeoutMs);
        security.close();
        await serverClosed;
        await webhooks.close();
        await kafkaClosed;
        await hub.close();
        await broker.close();
        // Outbound workers stop before the log they share a database with closes.
        await outbound.close(timeoutMs / 2);
        await heartbeatStopped;
        await backend.close();
      })();
      return closed;
    },
  };
}

