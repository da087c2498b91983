import { Pool } from 'undici';
import { serveRpc } from './bench-ipc.js';
import { now, payload, publishAcknowledged, publishRequest, type PublishApi } from './bench-protocol.js';

/**
 * The publisher process: `POST /v1/publish` over keep-alive connections (an undici Pool), one
 * event per request, the send time in the payload (or the peer's publish request: nchan's
 * publisher location, Centrifugo's HTTP API; see `publishRequest`). Two modes:
 * - `rate`: requests start on a fixed schedule (count at rate per second); the payload is stamped
 *   when the request actually starts, so a late start never hides server latency;
 * - `burst`: as fast as it goes, with at most `inflight` requests outstanding (one per pooled
 *   connection; the server sees that many concurrent publishers).
 */

export interface PublishArgs {
  /** Base URL of the server (`http://127.0.0.1:port`). */
  url: string;
  /** The server's publish API (Herald's by default). */
  server?: PublishApi | undefined;
  channel: string;
  mode: 'rate' | 'burst';
  count: number;
  /** Publishes per second (mode `rate`). */
  rate?: number;
  /** Requests outstanding at most. */
  inflight: number;
  /** Number of the first payload; probes use negative numbers. */
  start: number;
}

export interface PublishResult {
  sent: number;
  ok: number;
  failed: number;
  /** Status codes or error codes of failed requests, with counts. */
  failures: Record<string, number>;
  firstSendAt: number;
  lastAckAt: number;
  /** Requests that started more than 5 ms after their slot (mode `rate`): the publisher fell behind. */
  late: number;
}

/** Slack before a scheduled request counts as late. */
const LATE_MS = 5;

/** Keep-alive pools by server and size; a new server closes the previous server's pools. */
const pools = new Map<string, Pool>();
let poolOrigin = '';

/** A pool of exactly `connections` keep-alive connections, one request in flight on each. */
function poolFor(url: string, connections: number): Pool {
  if (poolOrigin !== url) {
    for (const p of pools.values()) void p.close();
    pools.clear();
    poolOrigin = url;
  }
  let pool = pools.get(`${connections}`);
  if (!pool) {
    pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
    pools.set(`${connections}`, pool);
  }
  return pool;
}

async function publish(a: PublishArgs): Promise<PublishResult> {
  const p = poolFor(a.url, a.inflight);
  const server = a.server ?? { api: 'herald' };
  // Centrifugo's answer says whether it took the publish; the others' status does.
  const readBody = server.api === 'centrifugo';
  const r: PublishResult = { sent: 0, ok: 0, failed: 0, failures: {}, firstSendAt: 0, lastAckAt: 0, late: 0 };
  let inflight = 0;
  let wake: (() => void) | undefined;
  const one = async (n: number) => {
    const t = now();
    if (r.firstSendAt === 0) r.firstSendAt = t;
    r.sent++;
    inflight++;
    try {
      const res = await p.request({ method: 'POST', ...publishRequest(server, a.channel, payload(t, n)) });
      const body = readBody ? await res.body.text() : (await res.body.dump(), '');
      if (publishAcknowledged(server, res.statusCode, body)) r.ok++;
      else fail(res.statusCode >= 200 && res.statusCode < 300 ? `${res.statusCode} ${body.slice(0, 80)}` : String(res.statusCode));
    } catch (err) {
      fail((err as { code?: string }).code ?? 'error');
    } finally {
      r.lastAckAt = now();
      inflight--;
      wake?.();
    }
  };
  const fail = (why: string) => {
    r.failed++;
    r.failures[why] = (r.failures[why] ?? 0) + 1;
  };
  const room = () => new Promise<void>((resolve) => (wake = resolve));
  const all: Promise<void>[] = [];
  const start = now();
  const period = a.mode === 'rate' ? 1000 / (a.rate ?? 1) : 0;
  for (let i = 0; i < a.count; i++) {
    if (a.mode === 'rate') {
      const due = start + i * period;
      const wait = due - now();
      // setTimeout has 1 ms granularity: sleep most of the gap, then start on time.
      if (wait > 1) await new Promise((res) => setTimeout(res, wait - 1));
      if (now() - due > LATE_MS) r.late++;
    }
    while (inflight >= a.inflight) await room();
    all.push(one(a.start + i));
  }
  await Promise.all(all);
  return r;
}

serveRpc({
  publish: (a: PublishArgs) => publish(a),
  /** CPU time this process has used so far (user + system), in milliseconds. */
  cpu: () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  },
  /** One probe event, numbered `-id`: tells the orchestrator every subscriber is live. */
  async probe(a: { url: string; server?: PublishApi; channel: string; id: number }) {
    const r = await publish({ url: a.url, server: a.server, channel: a.channel, mode: 'burst', count: 1, inflight: 1, start: -a.id });
    return { ok: r.ok === 1, failures: r.failures };
  },
});
