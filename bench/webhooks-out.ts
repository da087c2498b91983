import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { ChildRpc } from './bench-ipc.js';
import { cpuMsOf } from './bench-targets.js';
import { LocalPostgres } from './local-postgres.js';
import { LocalRedis } from './local-redis.js';

/**
 * Outbound webhooks benchmark: Herald as a user runs it (a child process, on one backend: SQLite
 * with an fsync per event commit, or a Redis or a PostgreSQL of this run's own), a local receiver
 * in a process of its own answering 200 at once, and a publisher in this process. `--backends`
 * runs the same figures on each backend in turn, one table.
 *
 * - throughput: a burst of events, every one owed to 1 endpoint (and then to each of 100);
 *   deliveries per second from the first publish to the last delivery received.
 * - lag: 1,000 events/s, open loop, one event per publish request; lag is the event's stored
 *   time (`time` in the payload) to the moment the receiver has the whole request.
 *
 * Run on its own: `npm run build && node dist/bench/webhooks-out.js [--events 20000] [--seconds 5]
 * [--backends sqlite,redis,postgres]`,
 * or from another script through `runWebhooksOutBench(options)`.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** deliveries/s the issue asks for, and the lag bound at GOAL_RATE. */
export const THROUGHPUT_GOAL = 5_000;
export const LAG_P99_GOAL_MS = 100;
export const GOAL_RATE = 1_000;
/** pino's level number of `warn`. */
const WARN_LEVEL = 40;
/** Events per publish request in the throughput bursts. */
const BURST_BATCH = 500;
/** Deliveries sent before anything is measured, so every measured burst runs on warm code. */
const WARM_UP_EVENTS = 3_000;
/** ms between publisher ticks in the lag run; each tick sends what has come due. */
const TICK_MS = 5;

/** One burst: deliveries, wall time, rate, and Herald's CPU time (user + system) per delivery. */
export interface Burst {
  deliveries: number;
  seconds: number;
  perSecond: number;
  heraldCpuUsPerDelivery: number;
}

/** Where Herald keeps its log and delivery queue in a run. */
export const BACKENDS = ['sqlite', 'redis', 'postgres'] as const;
export type BenchBackend = (typeof BACKENDS)[number];

export interface WebhooksOutResult {
  backend: BenchBackend;
  /** The same receiver driven by a plain undici loop (64 in flight): what the box can do at all. */
  baseline: { requests: number; perSecond: number };
  oneEndpoint: Burst;
  hundredEndpoints: Burst;
  lag: { rate: number; events: number; received: number; p50: number; p99: number; max: number };
  loadavg: number[];
}

/** The receiver process (bench/webhook-receiver-worker.ts). */
class Receiver {
  readonly #rpc = new ChildRpc(fileURLToPath(new URL('./webhook-receiver-worker.js', import.meta.url)), 'receiver');

  listen(): Promise<string> {
    return this.#rpc.call<string>('listen');
  }

  reset(lags = false): Promise<void> {
    return this.#rpc.call('reset', { lags });
  }

  /** Waits until `n` distinct deliveries arrived (or the time ran out: `received` says). */
  until(n: number, timeoutMs: number): Promise<{ received: number; lags: number[] }> {
    return this.#rpc.call('until', { n, timeoutMs });
  }

  close(): Promise<void> {
    return this.#rpc.close();
  }
}

/** The backend's own server for a run (none for SQLite), and the config that points Herald at it. */
interface BackendRun {
  config?: Record<string, unknown>;
  stop(): Promise<void>;
}

async function startBackend(backend: BenchBackend): Promise<BackendRun> {
  if (backend === 'redis') {
    // AOF with fsync every second: what a Redis that keeps a log is run with.
    const redis = await LocalRedis.start('everysec');
    return { config: { type: 'redis', url: redis.url, keyPrefix: 'bench' }, stop: () => redis.stop() };
  }
  if (backend === 'postgres') {
    const postgres = await LocalPostgres.start();
    return { config: { type: 'postgres', url: postgres.url }, stop: () => postgres.stop() };
  }
  return { stop: async () => undefined };
}

async function startHerald(dataDir: string, backend: Record<string, unknown> | undefined): Promise<{ child: ChildProcess; url: string }> {
  const config = join(dataDir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({ log: { level: 'info' }, outbound: { allowPrivateTargets: true, concurrency: 256 }, ...(backend ? { backend } : {}) }),
  );
  const flags = (process.env.HERALD_BENCH_FLAGS ?? '').split(' ').filter(Boolean);
  if (process.env.HERALD_BENCH_PROFILE) flags.push('--cpu-prof', '--cpu-prof-dir=' + process.env.HERALD_BENCH_PROFILE);
  const child = spawn(process.execPath, [...flags, join(ROOT, 'dist/src/cli/main.js'), '--config', config], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', HERALD_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`herald exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const rec = JSON.parse(line) as { msg?: string; url?: string; level?: number };
        if (rec.msg === 'herald listening' && rec.url) resolve(rec.url);
        // Herald's warnings and errors are part of the run's record (a figure beside a lost
        // delivery or a store error means little).
        if ((rec.level ?? 0) >= WARN_LEVEL) process.stderr.write(`herald: ${line}\n`);
      } catch {
        // Not a log line: output of HERALD_BENCH_FLAGS such as --trace-gc.
        process.stderr.write(line + '\n');
      }
    });
  });
  return { child, url };
}

async function api(pool: Pool, method: 'POST' | 'GET', path: string, body?: unknown): Promise<any> {
  const res = await pool.request({ method, path, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** Pages of an endpoint's deliveries read to explain a shortfall (500 each). */
const STATE_PAGES_MAX = 40;

/** What became of the deliveries of some endpoints: a count per status, and the errors seen. */
async function deliveryStates(pool: Pool, endpointIds: string[]): Promise<string> {
  const counts = new Map<string, number>();
  const errors = new Map<string, number>();
  for (const id of endpointIds.slice(0, 5)) {
    let before: string | null = null;
    for (let page = 0; page < STATE_PAGES_MAX; page++) {
      const q: string = before === null ? '' : `&before=${before}`;
      const r = (await api(pool, 'GET', `/v1/endpoints/${id}/deliveries?limit=500${q}`)) as {
        deliveries: { status: string; lastError: string | null }[];
        next: string | null;
      };
      for (const d of r.deliveries) {
        counts.set(d.status, (counts.get(d.status) ?? 0) + 1);
        if (d.lastError) errors.set(d.lastError, (errors.get(d.lastError) ?? 0) + 1);
      }
      before = r.next;
      if (before === null) break;
    }
  }
  const list = (m: Map<string, number>) => [...m].map(([k, n]) => `${k}: ${n}`).join(', ') || 'none';
  return `deliveries by status (first ${Math.min(5, endpointIds.length)} endpoint(s)): ${list(counts)}; errors: ${list(errors)}`;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;

export async function runWebhooksOutBench(
  opts: { events?: number; seconds?: number; backend?: BenchBackend; log?: (s: string) => void } = {},
): Promise<WebhooksOutResult> {
  const events = opts.events ?? 20_000;
  const seconds = opts.seconds ?? 5;
  const backend = opts.backend ?? 'sqlite';
  const say = opts.log ?? ((s: string) => process.stdout.write(s + '\n'));
  const log = (s: string) => say(`[${backend}] ${s}`);
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-bench-out-'));
  const store = await startBackend(backend).catch((err: unknown) => {
    throw new BackendUnavailable(`${backend} could not start here: ${(err as Error).message.split('\n')[0]}`);
  });
  const rx = new Receiver();
  const base = await rx.listen();
  let herald: { child: ChildProcess; url: string };
  try {
    herald = await startHerald(dataDir, store.config);
  } catch (err) {
    await rx.close();
    await store.stop();
    throw err;
  }
  const { child, url } = herald;
  const pool = new Pool(url, { connections: 16 });
  try {
    const raw = new Pool(base, { connections: 64 });
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next++ < events) {
          const r = await raw.request({ method: 'POST', path: '/raw', headers: { 'content-type': 'application/json' }, body: '{"n":1}' });
          await r.body.text();
        }
      }),
    );
    await raw.close();
    const baseline = { requests: events, perSecond: Math.round(events / ((performance.now() - t0) / 1000)) };
    log(`baseline (plain undici loop to the same receiver): ${baseline.perSecond} requests/s`);

    const burst = async (channel: string, total: number, expected: number, endpointIds: () => string[]) => {
      await rx.reset();
      const cpu0 = cpuMsOf(child.pid!);
      const t0 = performance.now();
      const done = rx.until(expected, 120_000).then(async (r) => {
        if (r.received < expected) {
          throw new Error(`receiver got ${r.received} of ${expected} in 120 s; ${await deliveryStates(pool, endpointIds())}`);
        }
      });
      for (let sent = 0; sent < total; sent += BURST_BATCH) {
        const n = Math.min(BURST_BATCH, total - sent);
        await api(pool, 'POST', '/v1/publish', Array.from({ length: n }, (_, i) => ({ channel, data: { n: sent + i, pad: 'x'.repeat(60) } })));
      }
      await done;
      const secs = (performance.now() - t0) / 1000;
      const cpuUs = (cpuMsOf(child.pid!) - cpu0) * 1000;
      return {
        deliveries: expected,
        seconds: Math.round(secs * 100) / 100,
        perSecond: Math.round(expected / secs),
        heraldCpuUsPerDelivery: Math.round(cpuUs / expected),
      };
    };

    // Warm-up, not measured: the first burst would otherwise also pay for compiling Herald's
    // delivery path (V8 optimizes it on helper threads while the burst runs).
    const warm = await api(pool, 'POST', '/v1/endpoints', { url: `${base}/warm`, channels: ['warm'], maxConcurrency: 256 });
    await burst('warm', WARM_UP_EVENTS, WARM_UP_EVENTS, () => [warm.id]);
    await pool.request({ method: 'DELETE', path: `/v1/endpoints/${warm.id}` }).then((r) => r.body.text());
    log(`warm-up: ${WARM_UP_EVENTS} deliveries (not measured)`);

    const one = await api(pool, 'POST', '/v1/endpoints', { url: `${base}/one`, channels: ['one'], maxConcurrency: 256 });
    const oneEndpoint = await burst('one', events, events, () => [one.id]);
    log(`1 endpoint: ${oneEndpoint.deliveries} deliveries in ${oneEndpoint.seconds} s = ${oneEndpoint.perSecond}/s (Herald CPU ${oneEndpoint.heraldCpuUsPerDelivery} µs per delivery)`);
    await pool.request({ method: 'PATCH', path: `/v1/endpoints/${one.id}`, headers: { 'content-type': 'application/json' }, body: '{"enabled":false}' }).then((r) => r.body.text());

    const perEndpoint = Math.ceil(events / 100);
    const hundred: string[] = [];
    for (let i = 0; i < 100; i++) hundred.push((await api(pool, 'POST', '/v1/endpoints', { url: `${base}/many/${i}`, channels: ['many'] })).id);
    const hundredEndpoints = await burst('many', perEndpoint, perEndpoint * 100, () => hundred);
    log(`100 endpoints: ${hundredEndpoints.deliveries} deliveries in ${hundredEndpoints.seconds} s = ${hundredEndpoints.perSecond}/s (Herald CPU ${hundredEndpoints.heraldCpuUsPerDelivery} µs per delivery)`);
    for (const id of hundred) await pool.request({ method: 'DELETE', path: `/v1/endpoints/${id}` }).then((r) => r.body.text());

    await api(pool, 'POST', '/v1/endpoints', { url: `${base}/lag`, channels: ['lag'], maxConcurrency: 64 });
    await rx.reset(true);
    const total = GOAL_RATE * seconds;
    const start = performance.now();
    let sent = 0;
    const inflight = new Set<Promise<unknown>>();
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * GOAL_RATE));
      for (; sent < due; sent++) {
        const p = api(pool, 'POST', '/v1/publish', { channel: 'lag', data: { n: sent, pad: 'x'.repeat(60) } });
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      }
      await new Promise((r) => setTimeout(r, TICK_MS));
    }
    await Promise.all(inflight);
    const got = await rx.until(total, 60_000);
    if (got.received < total) log(`receiver got ${got.received} of ${total} in 60 s`);
    const lags = got.lags.sort((a, b) => a - b);
    const lag = { rate: GOAL_RATE, events: total, received: got.received, p50: pct(lags, 0.5), p99: pct(lags, 0.99), max: lags[lags.length - 1] ?? NaN };
    log(`lag at ${GOAL_RATE} events/s: p50 ${lag.p50} ms, p99 ${lag.p99} ms, max ${lag.max} ms (${lag.received}/${lag.events} received)`);
    return { backend, baseline, oneEndpoint, hundredEndpoints, lag, loadavg: loadavg() };
  } finally {
    await pool.close();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await rx.close();
    await store.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** A backend whose server could not be started here (not installed): the run goes on without it. */
class BackendUnavailable extends Error {}

/**
 * A backend that did not give figures, with the reason (reported, never dropped): `skipped` when
 * its server could not start here, `failed` when the run itself went wrong (that fails the run).
 */
export interface SkippedBackend {
  backend: BenchBackend;
  skipped: string;
  failed: boolean;
}

/** Runs the figures on each backend in turn; a backend that cannot start is reported as skipped. */
export async function runWebhooksOutBackends(
  backends: readonly BenchBackend[],
  opts: { events?: number; seconds?: number; log?: (s: string) => void } = {},
): Promise<(WebhooksOutResult | SkippedBackend)[]> {
  const out: (WebhooksOutResult | SkippedBackend)[] = [];
  for (const backend of backends) {
    try {
      out.push(await runWebhooksOutBench({ ...opts, backend }));
    } catch (err) {
      const failed = !(err instanceof BackendUnavailable);
      const skipped = (err as Error).message.split('\n')[0]!;
      (opts.log ?? ((s: string) => process.stdout.write(s + '\n')))(`[${backend}] ${failed ? 'FAILED' : 'skipped'}: ${skipped}`);
      out.push({ backend, skipped, failed });
    }
  }
  return out;
}

/** The results as one markdown table, a column per backend. */
export function webhooksOutTable(results: readonly (WebhooksOutResult | SkippedBackend)[]): string {
  const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
  const ran = results.filter((r): r is WebhooksOutResult => !('skipped' in r));
  const cell = (r: WebhooksOutResult | SkippedBackend, f: (r: WebhooksOutResult) => string) =>
    'skipped' in r ? (r.failed ? 'FAILED' : 'skipped') : f(r);
  const row = (label: string, f: (r: WebhooksOutResult) => string, goal = '') => `| ${label} | ${results.map((r) => cell(r, f)).join(' | ')} | ${goal} |`;
  const lines = [
    '',
    `| figure | ${results.map((r) => r.backend).join(' | ')} | goal |`,
    `|---|${results.map(() => '---').join('|')}|---|`,
    row('baseline: plain undici loop, requests/s', (r) => String(r.baseline.perSecond), '(ceiling of this box now)'),
    row('deliveries/s, 1 endpoint', (r) => `${r.oneEndpoint.perSecond} (${mark(r.oneEndpoint.perSecond >= THROUGHPUT_GOAL)})`, `≥ ${THROUGHPUT_GOAL}`),
    row('deliveries/s, 100 endpoints', (r) => `${r.hundredEndpoints.perSecond} (${mark(r.hundredEndpoints.perSecond >= THROUGHPUT_GOAL)})`, `≥ ${THROUGHPUT_GOAL}`),
    row('Herald CPU µs per delivery, 1 / 100 endpoints', (r) => `${r.oneEndpoint.heraldCpuUsPerDelivery} / ${r.hundredEndpoints.heraldCpuUsPerDelivery}`),
    row(`lag p50 / p99 at ${GOAL_RATE} events/s, ms`, (r) => `${r.lag.p50} / ${r.lag.p99} (${mark(r.lag.p99 < LAG_P99_GOAL_MS)})`, `p99 < ${LAG_P99_GOAL_MS} ms`),
    row('load average during the run', (r) => r.loadavg.map((x) => x.toFixed(1)).join(' ')),
    '',
  ];
  for (const r of results) if ('skipped' in r) lines.push(`${r.backend}: ${r.failed ? 'FAILED' : 'skipped'} (${r.skipped})`);
  if (ran.length === 0) lines.push('no backend ran');
  return lines.join('\n') + '\n';
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { events: { type: 'string' }, seconds: { type: 'string' }, backends: { type: 'string' } } });
  const backends = (values.backends ?? 'sqlite').split(',').map((b) => b.trim()) as BenchBackend[];
  const unknown = backends.filter((b) => !BACKENDS.includes(b));
  if (unknown.length > 0) {
    process.stderr.write(`--backends: unknown ${unknown.join(', ')} (of ${BACKENDS.join(', ')})\n`);
    process.exit(2);
  }
  const results = await runWebhooksOutBackends(backends, {
    events: values.events ? Number(values.events) : undefined,
    seconds: values.seconds ? Number(values.seconds) : undefined,
  });
  process.stdout.write(webhooksOutTable(results));
  if (results.every((r) => 'skipped' in r) || results.some((r) => 'skipped' in r && r.failed)) process.exitCode = 1;
}
