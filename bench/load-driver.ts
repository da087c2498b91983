import { join } from 'node:path';
import { ChildRpc } from './bench-ipc.js';
import { LatencyHistogram, type PublishApi, type Transport, type WorkerStats } from './bench-protocol.js';
import { ROOT, rssOf } from './bench-targets.js';
import type { PublishArgs, PublishResult } from './publisher.js';

/** A measured window: publishes sent, deliveries expected and seen, latency. */
export interface Measurement {
  subscribers: number;
  publishes: number;
  failedPublishes: number;
  failures: Record<string, number>;
  expected: number;
  received: number;
  lost: number;
  duplicates: number;
  dropped: number;
  /** Received deliveries per second, from the first publish sent to the last delivery seen. */
  deliveriesPerSec: number;
  /** Publishes acknowledged per second, first send to last ack. */
  publishesPerSec: number;
  /** Rate mode: requests that started more than 5 ms late (the publisher could not keep up). */
  latePublishes: number;
  /** Server CPU time (user + system) during the window, per delivery: steady under noise. */
  serverCpuUsPerDelivery: number;
  /** Share of one core the server used during the window. */
  serverCpuShare: number;
  /** Share of one core the subscriber processes used together, and the publisher. */
  clientsCpuShare: number;
  publisherCpuShare: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
  /**
   * With several stream URLs (one per node, or one per transport), p50 and p99 of the
   * subscribers of each, in the order the URLs were given: the publishing node's own subscribers
   * against the other node's, or SSE subscribers against WebSocket ones in the same window.
   */
  perStream?: { p50: number; p99: number }[];
}

/** No new delivery for this long after the last publish is acknowledged: the rest are lost. */
const STALL_MS = 5_000;
/**
 * A window ends this long after the last publish is acknowledged however it goes: what has not
 * arrived by then counts as lost. Bounds the run when a server falls far behind (the naive
 * baselines do at 10,000 subscribers).
 */
const DRAIN_MAX_MS = 20_000;
/** How often the driver asks the workers for progress while it waits. */
const POLL_MS = 50;
/** A probe not seen by every subscriber after this long is sent again. */
const PROBE_RETRY_MS = 2_000;
/** All subscribers must be live within this long. */
const LIVE_TIMEOUT_MS = 60_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Drives one target: subscriber worker processes, one publisher process. Connections are spread
 * evenly over the workers; payload numbers grow across windows, so late deliveries of an earlier
 * window never count in a later one.
 */
export class LoadDriver {
  readonly #workers: ChildRpc[];
  readonly #publisher: ChildRpc;
  readonly #perWorker: number[];
  #nextN = 0;
  #probeId = 0;
  /** Subscribers of worker i use `#transports[i % length]` (both, in turn, to compare them in one window). */
  #transports: readonly Transport[] = ['sse'];
  /** Subscribers of worker i connect to `#streamUrls[i % length]` (one per node under test). */
  #streamUrls: readonly string[] = [''];
  #baseUrl = '';
  /** The target's API: how the publisher publishes and how WebSocket subscribers subscribe. */
  #server: PublishApi = { api: 'herald' };
  #serverCpuMs: () => number = () => 0;
  /**
   * Source addresses of the subscriber processes (process i uses entry i), for more connections
   * to one server than one address has ephemeral ports (~28,000 here); unset, the kernel picks.
   */
  sourceAddresses: readonly string[] | undefined;

  constructor(workers: number) {
    this.#workers = Array.from({ length: workers }, (_, i) => new ChildRpc(join(ROOT, 'dist/bench/client-worker.js'), `worker ${i}`));
    this.#perWorker = this.#workers.map(() => 0);
    this.#publisher = new ChildRpc(join(ROOT, 'dist/bench/publisher.js'), 'publisher');
  }

  /**
   * Points the driver at a new target; call after the previous target's connections are closed.
   * Publishes go to `baseUrl`; with several stream URLs (several nodes of one deployment), the
   * subscriber processes take them in turn, so each node holds an even share of subscribers.
   * `server` names the target's API when it is not Herald's (nchan, Centrifugo).
   */
  useTarget(
    transport: Transport | readonly Transport[],
    baseUrl: string,
    streamUrl: string | readonly string[],
    serverCpuMs: () => number,
    server: PublishApi = { api: 'herald' },
  ): void {
    this.#serverCpuMs = serverCpuMs;
    this.#server = server;
    this.#transports = typeof transport === 'string' ? [transport] : transport;
    this.#baseUrl = baseUrl;
    this.#streamUrls = typeof streamUrl === 'string' ? [streamUrl] : streamUrl;
  }

  get connections(): number {
    return this.#perWorker.reduce((a, b) => a + b, 0);
  }

  /** Opens connections until `total` are open, spread over the workers. Throws if any fails. */
  async connectTo(total: number): Promise<void> {
    const add = total - this.connections;
    const r = await this.tryConnectTo(total);
    if (r.failed > 0) throw new Error(`${r.failed} of ${add} connections failed: ${r.error ?? '?'}`);
  }

  /** As `connectTo`, but a refused connection is counted, not thrown (how many a server holds). */
  async tryConnectTo(total: number): Promise<{ open: number; failed: number; error?: string }> {
    const add = total - this.connections;
    if (add <= 0) return { open: this.connections, failed: 0 };
    const shares = this.#workers.map((_, i) => Math.floor(add / this.#workers.length) + (i < add % this.#workers.length ? 1 : 0));
    const results = await Promise.all(
      this.#workers.map((w, i) =>
        w.call<{ open: number; failed: number; error?: string }>('connect', {
          transport: this.#transports[i % this.#transports.length],
          api: this.#server.api,
          url: this.#streamUrls[i % this.#streamUrls.length],
          localAddress: this.sourceAddresses?.[i],
          channel: 'bench',
          count: shares[i],
        }),
      ),
    );
    results.forEach((r, i) => (this.#perWorker[i] = r.open));
    const failed = results.reduce((a, r) => a + r.failed, 0);
    const error = results.find((r) => r.error)?.error;
    return { open: this.connections, failed, ...(error ? { error } : {}) };
  }

  /** Resident memory of the subscriber processes together, in bytes. */
  clientsRssBytes(): number {
    return this.#workers.reduce((a, w) => a + (w.child.pid ? rssOf(w.child.pid) : 0), 0);
  }

  /** Connections the subscriber processes still hold open now (a server may close some later). */
  async openNow(): Promise<number> {
    const r = await Promise.all(this.#workers.map((w) => w.call<{ open: number }>('progress')));
    r.forEach((x, i) => (this.#perWorker[i] = x.open));
    return this.connections;
  }

  /** Closes connections until `total` remain. */
  async closeTo(total: number): Promise<void> {
    let remove = this.connections - total;
    const shares = this.#perWorker.map(() => 0);
    // Take evenly: the worker that would keep the most gives the next one.
    while (remove > 0) {
      const j = this.#perWorker.reduce((best, n, k) => (n - shares[k]! > this.#perWorker[best]! - shares[best]! ? k : best), 0);
      shares[j]!++;
      remove--;
    }
    const results = await Promise.all(this.#workers.map((w, i) => w.call<{ open: number }>('close', { count: shares[i] })));
    results.forEach((r, i) => (this.#perWorker[i] = r.open));
  }

  /**
   * Publishes probe events until every open subscriber has received one: proves each
   * subscription is live on the server (not only connected) before a window starts.
   */
  async waitLive(): Promise<void> {
    const deadline = Date.now() + LIVE_TIMEOUT_MS;
    for (;;) {
      const id = ++this.#probeId;
      const sent = await this.#publisher.call<{ ok: boolean; failures: Record<string, number> }>('probe', {
        url: this.#baseUrl,
        server: this.#server,
        channel: 'bench',
        id,
      });
      if (!sent.ok) throw new Error(`probe publish failed: ${JSON.stringify(sent.failures)}`);
      const retryAt = Date.now() + PROBE_RETRY_MS;
      while (Date.now() < retryAt) {
        const r = await Promise.all(this.#workers.map((w) => w.call<{ seen: number; open: number }>('probe', { id })));
        const seen = r.reduce((a, x) => a + x.seen, 0);
        const open = r.reduce((a, x) => a + x.open, 0);
        if (seen >= open && open >= this.connections) return;
        if (open < this.connections) throw new Error(`${this.connections - open} subscribers closed before going live`);
        await sleep(POLL_MS);
      }
      if (Date.now() > deadline) throw new Error(`subscribers not live after ${LIVE_TIMEOUT_MS} ms`);
    }
  }

  /** Publishes as fast as the publisher goes to `channel`, measuring nothing (a warm-up). */
  async publishUnmeasured(p: { channel: string; count: number; inflight: number }): Promise<void> {
    const start = this.#nextN;
    this.#nextN += p.count;
    const pub = await this.#publisher.call<PublishResult>('publish', { mode: 'burst', ...p, url: this.#baseUrl, server: this.#server, start });
    if (pub.failed > 0) throw new Error(`warm-up publishes failed: ${JSON.stringify(pub.failures)}`);
  }

  /** One measured window: publish, wait for every delivery (or a stall), gather the figures. */
  async measure(p: Omit<PublishArgs, 'url' | 'channel' | 'start'>): Promise<Measurement> {
    const start = this.#nextN;
    this.#nextN += p.count;
    const begun = await Promise.all(this.#workers.map((w) => w.call<{ open: number }>('begin', { start, count: p.count })));
    const subscribers = begun.reduce((a, b) => a + b.open, 0);
    const load0 = await this.#loadCpuMs();
    const cpu0 = this.#serverCpuMs();
    const wall0 = Date.now();
    const pub = await this.#publisher.call<PublishResult>('publish', { ...p, url: this.#baseUrl, server: this.#server, channel: 'bench', start });
    const expected = pub.ok * subscribers;
    let last = -1;
    let lastChange = Date.now();
    const drainDeadline = Date.now() + DRAIN_MAX_MS;
    for (;;) {
      const r = await Promise.all(this.#workers.map((w) => w.call<{ received: number }>('progress')));
      const got = r.reduce((a, x) => a + x.received, 0);
      if (got >= expected) break;
      if (got !== last) {
        last = got;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > STALL_MS) break;
      if (Date.now() > drainDeadline) break;
      await sleep(POLL_MS);
    }
    const cpuMs = this.#serverCpuMs() - cpu0;
    const wallMs = Date.now() - wall0;
    const load1 = await this.#loadCpuMs();
    const stats = await Promise.all(this.#workers.map((w) => w.call<WorkerStats>('stats')));
    const h = new LatencyHistogram();
    const perStream = this.#streamUrls.map(() => new LatencyHistogram());
    let received = 0;
    let duplicates = 0;
    let dropped = 0;
    let lastAt = 0;
    for (const [i, s] of stats.entries()) {
      h.merge(s.histogram);
      perStream[i % perStream.length]!.merge(s.histogram);
      received += s.received;
      duplicates += s.duplicates;
      dropped += s.dropped;
      lastAt = Math.max(lastAt, s.lastAt);
    }
    return {
      subscribers,
      publishes: pub.ok,
      failedPublishes: pub.failed,
      failures: pub.failures,
      expected,
      received,
      lost: Math.max(0, expected - received),
      duplicates,
      dropped,
      deliveriesPerSec: lastAt > pub.firstSendAt ? received / ((lastAt - pub.firstSendAt) / 1000) : 0,
      publishesPerSec: pub.lastAckAt > pub.firstSendAt ? pub.ok / ((pub.lastAckAt - pub.firstSendAt) / 1000) : 0,
      latePublishes: pub.late,
      serverCpuUsPerDelivery: received > 0 ? (cpuMs * 1000) / received : NaN,
      serverCpuShare: wallMs > 0 ? cpuMs / wallMs : NaN,
      clientsCpuShare: wallMs > 0 ? (load1.clients - load0.clients) / wallMs : NaN,
      publisherCpuShare: wallMs > 0 ? (load1.publisher - load0.publisher) / wallMs : NaN,
      p50: h.quantile(0.5),
      p99: h.quantile(0.99),
      max: h.max,
      mean: h.count > 0 ? h.sum / h.count : NaN,
      ...(perStream.length > 1 ? { perStream: perStream.map((x) => ({ p50: x.quantile(0.5), p99: x.quantile(0.99) })) } : {}),
    };
  }

  /** CPU milliseconds used so far by the subscriber processes together, and the publisher. */
  async #loadCpuMs(): Promise<{ clients: number; publisher: number }> {
    const [publisher, ...clients] = await Promise.all([
      this.#publisher.call<number>('cpu'),
      ...this.#workers.map((w) => w.call<number>('cpu')),
    ]);
    return { clients: clients.reduce((a, b) => a + b, 0), publisher: publisher! };
  }

  /** Ends every child process. Idempotent. */
  async close(): Promise<void> {
    await Promise.all([...this.#workers.map((w) => w.close()), this.#publisher.close()]);
  }
}
