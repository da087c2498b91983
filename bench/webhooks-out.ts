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

/**
 * Outbound webhooks benchmark: Herald as a user runs it (a child process, SQLite with an fsync
 * per event commit), a local receiver in a process of its own answering 200 at once, and a
 * publisher in this process.
 *
 * - throughput: a burst of events, every one owed to 1 endpoint (and then to each of 100);
 *   deliveries per second from the first publish to the last delivery received.
 * - lag: 1,000 events/s, open loop, one event per publish request; lag is the event's stored
 *   time (`time` in the payload) to the moment the receiver has the whole request.
 *
 * Run on its own: `npm run build && node dist/bench/webhooks-out.js [--events 20000] [--seconds 5]`,
 * or from another script through `runWebhooksOutBench(options)`.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** deliveries/s the issue asks for, and the lag bound at GOAL_RATE. */
export const THROUGHPUT_GOAL = 5_000;
export const LAG_P99_GOAL_MS = 100;
export const GOAL_RATE = 1_000;
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

export interface WebhooksOutResult {
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

async function startHerald(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const config = join(dataDir, 'config.json');
  writeFileSync(config, JSON.stringify({ log: { level: 'info' }, outbound: { allowPrivateTargets: true, concurrency: 256 } }));
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
        const rec = JSON.parse(line) as { msg?: string; url?: string };
        if (rec.msg === 'herald listening' && rec.url) resolve(rec.url);
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

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;

export async function runWebhooksOutBench(opts: { events?: number; seconds?: number; log?: (s: string) => void } = {}): Promise<WebhooksOutResult> {
  const events = opts.events ?? 20_000;
  const seconds = opts.seconds ?? 5;
  const log = opts.log ?? ((s: string) => process.stdout.write(s + '\n'));
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-bench-out-'));
  const rx = new Receiver();
  const base = await rx.listen();
  const { child, url } = await startHerald(dataDir);
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

    const burst = async (channel: string, total: number, expected: number) => {
      await rx.reset();
      const cpu0 = cpuMsOf(child.pid!);
      const t0 = performance.now();
      const done = rx.until(expected, 120_000).then((r) => {
        if (r.received < expected) throw new Error(`receiver got ${r.received} of ${expected} in 120 s`);
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
    await burst('warm', WARM_UP_EVENTS, WARM_UP_EVENTS);
    await pool.request({ method: 'DELETE', path: `/v1/endpoints/${warm.id}` }).then((r) => r.body.text());
    log(`warm-up: ${WARM_UP_EVENTS} deliveries (not measured)`);

    const one = await api(pool, 'POST', '/v1/endpoints', { url: `${base}/one`, channels: ['one'], maxConcurrency: 256 });
    const oneEndpoint = await burst('one', events, events);
    log(`1 endpoint: ${oneEndpoint.deliveries} deliveries in ${oneEndpoint.seconds} s = ${oneEndpoint.perSecond}/s (Herald CPU ${oneEndpoint.heraldCpuUsPerDelivery} µs per delivery)`);
    await pool.request({ method: 'PATCH', path: `/v1/endpoints/${one.id}`, headers: { 'content-type': 'application/json' }, body: '{"enabled":false}' }).then((r) => r.body.text());

    const perEndpoint = Math.ceil(events / 100);
    const hundred: string[] = [];
    for (let i = 0; i < 100; i++) hundred.push((await api(pool, 'POST', '/v1/endpoints', { url: `${base}/many/${i}`, channels: ['many'] })).id);
    const hundredEndpoints = await burst('many', perEndpoint, perEndpoint * 100);
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
    return { baseline, oneEndpoint, hundredEndpoints, lag, loadavg: loadavg() };
  } finally {
    await pool.close();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await rx.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { events: { type: 'string' }, seconds: { type: 'string' } } });
  const r = await runWebhooksOutBench({
    events: values.events ? Number(values.events) : undefined,
    seconds: values.seconds ? Number(values.seconds) : undefined,
  });
  const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
  process.stdout.write(
    [
      '',
      '| figure | result | goal |',
      '|---|---|---|',
      `| baseline: plain undici loop, requests/s | ${r.baseline.perSecond} | (ceiling of this box now) |`,
      `| deliveries/s, 1 endpoint | ${r.oneEndpoint.perSecond} | ≥ ${THROUGHPUT_GOAL} (${mark(r.oneEndpoint.perSecond >= THROUGHPUT_GOAL)}) |`,
      `| deliveries/s, 100 endpoints | ${r.hundredEndpoints.perSecond} | ≥ ${THROUGHPUT_GOAL} (${mark(r.hundredEndpoints.perSecond >= THROUGHPUT_GOAL)}) |`,
      `| lag p50 / p99 at ${r.lag.rate} events/s | ${r.lag.p50} / ${r.lag.p99} ms | p99 < ${LAG_P99_GOAL_MS} ms (${mark(r.lag.p99 < LAG_P99_GOAL_MS)}) |`,
      `| load average during the run | ${r.loadavg.map((x) => x.toFixed(1)).join(' ')} | |`,
      '',
    ].join('\n'),
  );
}
