/**
 * Every default in one place, each with its unit. The config file overrides any of them;
 * src/config/schema.ts validates the result once at start, then it is frozen.
 */
export const DEFAULTS = {
  /**
   * Where everything that must live together is kept: the log, idempotency keys, inbound
   * receipts, stream positions (Kafka), the outbound delivery queue and its leases.
   */
  backend: {
    /** `sqlite` (embedded, durable, the default) or `memory` (lost on restart). */
    type: 'sqlite' as 'sqlite' | 'memory',
    /** sqlite: database file; relative paths are under the data folder. */
    file: 'herald.db',
    /** sqlite: `full` survives power loss; `normal` survives a process crash only. */
    synchronous: 'full' as 'full' | 'normal',
    /**
     * redis: every key of the deployment starts with `{<keyPrefix>}:`; the braces are a hash tag,
     * so on Redis Cluster all keys of one log share a slot (one atomic script per append).
     */
    keyPrefix: 'herald',
    /** redis: replicas a publish waits for (Redis `WAIT`) before it is acknowledged; 0: none. */
    waitReplicas: 0,
    /** redis: seconds a publish waits for `waitReplicas` before it answers 503. */
    waitTimeoutSeconds: 1,
    /** postgres: the schema holding Herald's tables. */
    schema: 'herald',
    /** postgres: apply pending migrations at start (false: `herald migrate` does it, start only checks). */
    migrate: true,
  },
  retention: {
    /** seconds: events older than this are pruned (24 h). 0 keeps any age. */
    maxAgeSeconds: 86_400,
    /** events: only the newest this many are kept. 0 keeps any number. */
    maxEvents: 1_000_000,
    /** seconds between background prunes. */
    pruneIntervalSeconds: 60,
    /** seconds an idempotency key is remembered (24 h). */
    idempotencyTtlSeconds: 86_400,
  },
  limits: {
    /** bytes: largest HTTP request body (413 past it). */
    maxBodyBytes: 1_048_576,
    /** bytes: largest WebSocket frame a client may send (closed with 1009 past it). */
    maxFrameBytes: 1_048_576,
    /** subscriptions one WebSocket connection may hold. */
    subscriptionsPerConnection: 100,
    /** channels one SSE connection may name. */
    channelsPerStream: 100,
    /** bytes: a connection's unsent backlog before it is cut off as slow. */
    outgoingBufferBytes: 1_048_576,
    /** requests/s: publish requests per API key, identity, or (anonymous) client address. 0: no limit. */
    publishPerSecond: 1_000,
    /** connections/s: new SSE or WebSocket connections per client address. 0: no limit. */
    connectPerSecond: 50,
    /**
     * requests/s: `GET /v1/events` history reads per API key, identity, or (anonymous) client
     * address; each may scan the log. 0: no limit.
     */
    historyPerSecond: 100,
    /**
     * replays (resumes with a position, and `GET /v1/events` reads) running at once on this node;
     * more wait their turn, and a connection runs one at a time. 0: no limit.
     */
    concurrentReplays: 8,
    /** requests/s: inbound webhook requests per client address. 0: no limit. */
    webhooksPerSecond: 200,
    /** connections open at once per client address (SSE and WebSocket). 0: no limit. */
    connectionsPerIp: 1_000,
    /** connections open at once per identity (token `sub` or API key). 0: no limit. */
    connectionsPerIdentity: 100,
    /** frames/s a WebSocket client may send; past it the connection is closed (4429). 0: no limit. */
    messagesPerSecondPerConnection: 100,
    /** Loopback clients are exempt from the rate and connection limits unless this is true. */
    applyToLoopback: false,
    /** bytes: largest request head (request line and headers); 431 past it. */
    maxHeaderBytes: 16_384,
    /** seconds a client has to send its request headers (slow-loris guard); 408 past it. */
    headersTimeoutSeconds: 10,
    /** seconds a client has to send its whole request (headers and body); 408 past it. */
    requestTimeoutSeconds: 30,
  },
  dispatch: {
    /**
     * milliseconds: the least time between two writes to one subscriber. Events that come
     * faster wait (at most this long) and go out in one write; at lower rates nothing waits.
     * 0 writes every publish at once.
     */
    writeWindowMs: 10,
  },
  sse: {
    /** seconds between heartbeat comments, so proxies keep the stream open. */
    heartbeatSeconds: 15,
    /** milliseconds: the `retry:` hint for the browser's reconnect delay. */
    retryMs: 3_000,
  },
  websocket: {
    /** Clients may publish: `false`, `true`, or a list of channel patterns. */
    clientPublish: false as boolean | string[],
    /** seconds between pings; a peer that has not answered the previous one is dropped. */
    pingIntervalSeconds: 15,
  },
  compat: {
    /** The default feed: `GET /sse`, `GET /sse/send` and `POST /webhook`. */
    feedChannel: 'feed',
    /** What `GET /ws` sockets receive and `GET /ws/send` publishes to. */
    wsChannel: 'broadcast',
  },
  cors: {
    /** Origins allowed to call Herald from a browser; `*` allows any. */
    origins: ['*'] as string[],
  },
  /**
   * HTTPS with HTTP/2 on Herald's own port (README "HTTPS and HTTP/2"): `{ cert, key }`, paths
   * to PEM files. None: plain HTTP (TLS ended by a proxy in front, or none).
   */
  tls: undefined as { cert: string; key: string } | undefined,
  /**
   * Who sent a request: `false` trusts only the socket's address; `true` (one proxy) or a number
   * of proxy hops takes the client address from `X-Forwarded-For` (docs/auth.md).
   */
  trustProxy: false as boolean | number,
  /** Credentials and channel permissions (docs/auth.md). No keys and no JWT: dev mode. */
  auth: {
    /** Channel patterns anyone may subscribe to without credentials. */
    publicChannels: [] as string[],
    /** The cookie a browser may carry its token in (SSE, WebSocket). */
    cookieName: 'herald_token',
  },
  jwt: {
    /** seconds of clock skew allowed on `exp` and `nbf`. */
    clockToleranceSeconds: 5,
    /** seconds a fetched JWKS is trusted before it is fetched again. */
    jwksCacheSeconds: 600,
  },
  presence: {
    /** Channel patterns whose subscribers are tracked as members. None by default. */
    channels: [] as string[],
    /** seconds a member stays after its last connection closes, so a reconnect sends no leave/join. */
    leaveDelaySeconds: 5,
  },
  metrics: {
    /**
     * `GET /metrics` answers anyone (for a scraper that sends no credentials). Otherwise, with
     * auth configured, it needs an API key with the `admin` scope; in dev mode it is open.
     */
    public: false,
  },
  /** seconds: longest a graceful shutdown waits before exiting anyway. */
  shutdownTimeoutSeconds: 10,
  /** Processes serving the port (`herald --workers N`, README "Every core: --workers"). */
  cluster: {
    /** processes: 1 runs Herald in the process started; `auto` starts one per core. */
    workers: 1 as number | 'auto',
  },
  /** Outbound webhooks (docs/outbound-webhooks.md). */
  outbound: {
    /** seconds: one delay before each attempt (first at once, then 5 s, 5 min, ... 10 h). */
    retryScheduleSeconds: [0, 5, 300, 1_800, 7_200, 18_000, 36_000, 36_000] as number[],
    /** fraction: each delay is moved by up to this much either way, so retries do not stampede. */
    retryJitter: 0.2,
    /** seconds: one attempt (connect, headers and the first 4 KiB of the body). */
    timeoutSeconds: 15,
    /** seconds: a claimed delivery is invisible to other workers this long; must exceed the timeout. */
    leaseSeconds: 60,
    /**
     * seconds the node that plans deliveries holds the planner lease unless it renews it (every
     * third of it): when that node dies, another node of the same backend plans within this long.
     */
    plannerLeaseSeconds: 15,
    /** requests in flight at once across every endpoint of this node. */
    concurrency: 256,
    /**
     * worker threads that send the requests (undici, TLS, parsing) beside the event loop that
     * plans and records deliveries; 0 sends from the event loop.
     */
    senderThreads: 1,
    /** requests in flight at once per `parallel` endpoint unless the endpoint says otherwise. */
    maxConcurrencyPerEndpoint: 10,
    /** seconds: the longest `Retry-After` (429, 503) honoured; longer values are cut to this. */
    maxRetryAfterSeconds: 3_600,
    /** seconds an endpoint may keep failing before it is disabled (5 days). */
    disableAfterFailingSeconds: 432_000,
    /** consecutive failures that open an endpoint's circuit breaker. */
    circuitBreakerFailures: 10,
    /** seconds an open circuit waits before one probe request. */
    circuitBreakerCooldownSeconds: 30,
    /** seconds both the old and the new secret sign after a rotation (24 h). */
    secretRotationOverlapSeconds: 86_400,
    /** seconds between sweeps for due retries and expired leases. */
    sweepIntervalSeconds: 1,
    /** seconds delivered and dead-lettered deliveries (and their attempts) are kept (7 days). */
    deliveryRetentionSeconds: 604_800,
    /**
     * Whether this node sends webhooks. Off: it still serves the endpoint and delivery APIs and
     * plans deliveries, but sends nothing (an API-only node; a node with it on sends them).
     */
    send: true,
    /** Allow targets on loopback, private, link-local or metadata addresses (SSRF guard off). */
    allowPrivateTargets: false,
    /** Where Herald announces endpoint changes it made itself (auto-disable). */
    systemChannel: 'herald.system',
  },
  /** Defaults for every entry of `sources` (inbound webhooks, src/transports/webhook-in/). */
  sources: {
    /** seconds a signed timestamp may differ from now (Stripe, Slack, Standard Webhooks: 5 min). */
    toleranceSeconds: 300,
    /** bytes: largest body a source accepts (GitHub sends up to 25 MB: raise it there). */
    maxBodyBytes: 1_048_576,
    /**
     * seconds provider ids (and accepted receipts) are kept, so a retry is still recognised:
     * at least as long as the provider retries (Stripe and PayPal: 3 days).
     */
    retentionSeconds: 259_200,
    /**
     * Whether `{type}` in a channel template may come from a header the signature does not cover
     * (GitHub, Shopify, an hmac typeHeader): off, so one signed body cannot pick its channel.
     */
    unsignedTypeInChannel: false,
    /** Generic `hmac` provider: the signature header, its encoding, and a prefix before it. */
    hmac: { header: 'x-signature', encoding: 'hex' as 'hex' | 'base64', prefix: '' },
  },
  /** Defaults for `kafka` (src/sources/kafka-source.ts); `brokers`, `groupId`, `topics` have none. */
  kafka: {
    /** The client id Kafka sees in its logs and quotas. */
    clientId: 'herald',
    /** Where records Herald cannot map are recorded in the log (one event per record). */
    rejectedChannel: 'kafka.rejected',
    /**
     * Ask the broker to create a consumed topic that does not exist (it does when its
     * `auto.create.topics.enable` is on). Off: topics belong to whoever produces to them, and a
     * missing one is reported and waited for.
     */
    createTopics: false,
    /** milliseconds: the group drops a member silent this long (Kafka's own default is 45 s). */
    sessionTimeoutMs: 30_000,
    /** milliseconds between heartbeats to the group coordinator (at most a third of the above). */
    heartbeatIntervalMs: 3_000,
    /** records: most records stored per log transaction. */
    batchMaxRecords: 500,
    /** records: most records fetched ahead of the log; past it fetching stops (backpressure). */
    bufferMaxRecords: 2_000,
    /** bytes: most bytes one fetch response may carry. */
    fetchMaxBytes: 4_194_304,
    /** milliseconds a fetch waits on the broker for new records when there are none. */
    fetchMaxWaitMs: 500,
    /** seconds between consumer lag measurements (`herald_kafka_consumer_lag`). */
    lagIntervalSeconds: 5,
    /** seconds: the longest wait between retries while the log or Kafka is unavailable. */
    retryMaxDelaySeconds: 5,
  },
  log: {
    level: 'info' as 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent',
  },
};
