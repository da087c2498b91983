import { Pool } from 'undici';
import { serveRpc } from './bench-ipc.js';
import { LatencyHistogram, now, payload, type SparseHistogram } from './bench-protocol.js';

/**
 * A publisher process for acknowledged-publish throughput: `connections` keep-alive connections
 * (an undici Pool), each a publisher that sends its next `POST /v1/publish` as soon as the last
 * one was answered, for a fixed time. Only 201 answers count, and each counts its events (1, or
 * the batch size for a JSON array). The bodies are made once: nothing but HTTP is timed.
 */

export interface AckArgs {
  /** Base URL of the node this process publishes to. */
  url: string;
  /** Concurrent publishers (keep-alive connections, one request in flight on each). */
  connections: number;
  /** Events per request: 1 sends one event object, more send a JSON array of that many. */
  batch: number;
  /** milliseconds to publish for. */
  durationMs: number;
}

export interface AckResult {
  /** Events in requests answered 201. */
  events: number;
  requests: number;
  failed: number;
  failures: Record<string, number>;
  /** milliseconds from the first request sent to the last answer. */
  elapsedMs: number;
  /** Request latency (sent → answered), 201s only. */
  histogram: SparseHistogram;
}

function body(batch: number, t: number): string {
  const one = `{"channel":"bench-ack","data":${payload(t, 0)}}`;
  return batch === 1 ? one : `[${Array.from({ length: batch }, () => one).join(',')}]`;
}

async function run(a: AckArgs): Promise<AckResult> {
  const pool = new Pool(a.url, { connections: a.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const text = body(a.batch, now());
  const h = new LatencyHistogram();
  const r = { events: 0, requests: 0, failed: 0, failures: {} as Record<string, number> };
  const start = now();
  const until = start + a.durationMs;
  let last = start;
  const lane = async () => {
    while (now() < until) {
      const t = now();
      try {
        const res = await pool.request({ path: '/v1/publish', method: 'POST', headers: { 'content-type': 'application/json' }, body: text });
        await res.body.dump();
        if (res.statusCode === 201) {
          r.events += a.batch;
          r.requests++;
          h.record(now() - t);
        } else {
          r.failed++;
          r.failures[res.statusCode] = (r.failures[res.statusCode] ?? 0) + 1;
        }
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'error';
        r.failed++;
        r.failures[code] = (r.failures[code] ?? 0) + 1;
      }
      last = now();
    }
  };
  await Promise.all(Array.from({ length: a.connections }, lane));
  await pool.close();
  return { ...r, elapsedMs: last - start, histogram: h.toSparse() };
}

serveRpc({
  run: (a: AckArgs) => run(a),
  cpu: () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  },
});
