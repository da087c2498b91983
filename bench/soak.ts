import { parsePosition } from '../src/core/position.js';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ChildRpc } from './bench-ipc.js';
import { ROOT, rssOf, Target } from './bench-targets.js';
import type { PublishResult } from './publisher.js';
import type { SoakStats } from './soak-worker.js';

const USAGE = `npm run soak -- [options]

Starts Herald as a user runs it (node dist/src/cli/main.js, SQLite log, 127.0.0.1 only) and keeps
it under churning load for a bounded time: SSE and WebSocket connections spread over subscriber
processes, each living a random time and then resuming with Last-Event-ID / since (now and then
from far back: a replay), and a steady stream of publishes. It samples Herald's RSS, open files
and event-loop delay, and checks that every client saw every event once, in order.

  --minutes N        length of the run (default 20)
  --connections N    connections held at once, half SSE, half WebSocket (default 5000)
  --workers N        subscriber processes (default 4)
  --rate N           publishes per second (default 10)
  --warmup-share F   share of the run before the "after warm-up" sample (default 0.2)
  --samples FILE     also write every sample (RSS, open files, connections, loop p99) as JSON
`;

/** Flat means the end is within this share of the after-warm-up figure (RSS, open files). */
const FLAT_SHARE = 0.1;
/** milliseconds between samples of RSS, open files and /metrics. */
const SAMPLE_MS = 5_000;
/** Samples averaged for "after warm-up" and for "end" (30 s), so one GC or one wave of reconnects does not decide the verdict. */
const SAMPLES_AVERAGED = 6;
/** A connection lives between these two (milliseconds), then leaves and resumes. */
const MIN_LIFE_MS = 10_000;
const MAX_LIFE_MS = 50_000;
/** Share of reconnects that resume from this many events back (a replay, not only the tail). */
const DEEP_RESUME_SHARE = 0.02;
const DEEP_RESUME_EVENTS = 1_000;
/** Publishes per publisher call: the publisher answers between chunks, so the run can end on time. */
const PUBLISH_CHUNK_SECONDS = 10;
/** milliseconds every open connection has, after the last publish, to reach the head of the log. */
const CATCH_UP_MS = 60_000;
/** milliseconds all connections have to open at the start. */
const CONNECT_ALL_MS = 180_000;
const CHANNEL = 'soak';
/**
 * milliseconds Herald is left idle after every connection closed before its memory is read again:
 * long enough for V8's idle-time collection, so what is left is what the run kept, not garbage.
 */
const IDLE_AFTER_MS = 20_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  at: number;
  rss: number;
  fds: number;
  open: number;
  lagP99: number | undefined;
  /** V8 heap in use (prom-client), to tell a heap that grows from RSS the allocator keeps. */
  heapUsed: number | undefined;
}

async function metric(url: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

function mib(bytes: number | undefined): string {
  return `${((bytes ?? NaN) / 2 ** 20).toFixed(1)} MiB`;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '20' },
      connections: { type: 'string', default: '5000' },
      workers: { type: 'string', default: '4' },
      rate: { type: 'string', default: '10' },
      'warmup-share': { type: 'string', default: '0.2' },
      samples: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const minutes = Number(values.minutes);
  const connections = Number(values.connections);
  const workerCount = Number(values.workers);
  const rate = Number(values.rate);
  const warmupShare = Number(values['warmup-share']);
  if (![minutes, connections, workerCount, rate, warmupShare].every((n) => Number.isFinite(n) && n > 0)) {
    process.stderr.write(USAGE);
    return 2;
  }
  const runMs = minutes * 60_000;

  const herald = await Target.start({ kind: 'herald', transport: 'sse', store: 'sqlite', sync: 'full' });
  const pid = herald.child.pid!;
  const heapBefore = await metric(herald.url, 'herald_process_nodejs_heap_size_used_bytes');
  const rssBefore = rssOf(pid);
  const workers = Array.from({ length: workerCount }, (_, i) => new ChildRpc(join(ROOT, 'dist/bench/soak-worker.js'), `soak worker ${i}`));
  const publisher = new ChildRpc(join(ROOT, 'dist/bench/publisher.js'), 'publisher');
  const samples: Sample[] = [];
  const checks: { name: string; ok: boolean; detail: string }[] = [];
  try {
    const sse = Math.floor(connections / 2);
    const ws = connections - sse;
    const share = (n: number, i: number) => Math.floor(n / workerCount) + (i < n % workerCount ? 1 : 0);
    await Promise.all(
      workers.map((w, i) =>
        w.call('start', {
          url: herald.url,
          channel: CHANNEL,
          sse: share(sse, i),
          ws: share(ws, i),
          minLifeMs: MIN_LIFE_MS,
          maxLifeMs: MAX_LIFE_MS,
          deepResumeShare: DEEP_RESUME_SHARE,
          deepResumeEvents: DEEP_RESUME_EVENTS,
        }),
      ),
    );
    const stats = async () => Promise.all(workers.map((w) => w.call<SoakStats>('stats')));
    const openNow = async () => (await stats()).reduce((a, x) => a + x.open, 0);
    const connectDeadline = Date.now() + CONNECT_ALL_MS;
    while ((await openNow()) < connections * 0.95) {
      if (Date.now() > connectDeadline) throw new Error(`fewer than 95 % of ${connections} connections open after ${CONNECT_ALL_MS} ms`);
      await sleep(500);
    }
    log(`${await openNow()} connections open; soaking for ${minutes} min at ${rate} publishes/s`);

    const start = Date.now();
    const end = start + runMs;
    let published = 0;
    let publishFailures = 0;
    const publishing = (async () => {
      while (Date.now() < end) {
        const count = Math.max(1, Math.min(rate * PUBLISH_CHUNK_SECONDS, Math.floor(((end - Date.now()) / 1000) * rate)));
        const r = await publisher.call<PublishResult>('publish', {
          url: herald.url,
          channel: CHANNEL,
          mode: 'rate',
          rate,
          count,
          inflight: 4,
          start: published,
        });
        published += r.ok;
        publishFailures += r.failed;
      }
    })();
    let nextSample = start;
    while (Date.now() < end) {
      await sleep(Math.max(0, nextSample - Date.now()));
      nextSample += SAMPLE_MS;
      const open = await openNow();
      const lag = await metric(herald.url, 'herald_process_nodejs_eventloop_lag_p99_seconds');
      const heapUsed = await metric(herald.url, 'herald_process_nodejs_heap_size_used_bytes');
      samples.push({ at: Date.now() - start, rss: rssOf(pid), fds: readdirSync(`/proc/${pid}/fd`).length, open, lagP99: lag, heapUsed });
      const last = samples[samples.length - 1]!;
      if (samples.length % 12 === 1) {
        log(`${Math.round(last.at / 1000)} s: rss ${(last.rss / 2 ** 20).toFixed(1)} MiB, heap used ${((last.heapUsed ?? NaN) / 2 ** 20).toFixed(1)} MiB, fds ${last.fds}, open ${open}, loop p99 ${((lag ?? NaN) * 1000).toFixed(1)} ms`);
      }
    }
    await publishing;

    // The head of the log: one more event; every open connection must reach it.
    const head = await fetch(`${herald.url}/v1/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ channel: CHANNEL, data: 'end' }),
    }).then((r) => r.json() as Promise<{ id: string }>);
    const headId = parsePosition(head.id).seq;
    let behind = Infinity;
    const catchUpDeadline = Date.now() + CATCH_UP_MS;
    while (Date.now() < catchUpDeadline) {
      const r = await Promise.all(workers.map((w) => w.call<{ behind: number }>('behind', { id: headId })));
      behind = r.reduce((a, x) => a + x.behind, 0);
      if (behind === 0) break;
      await sleep(500);
    }
    const final = await stats();
    await Promise.all(workers.map((w) => w.call('stop')));
    const fdsBefore = readdirSync(`/proc/${pid}/fd`).length;
    await sleep(IDLE_AFTER_MS);
    const heapIdle = await metric(herald.url, 'herald_process_nodejs_heap_size_used_bytes');
    const rssIdle = rssOf(pid);
    const fdsIdle = readdirSync(`/proc/${pid}/fd`).length;

    // Suspected gaps: an id jump is a gap only if the log holds an event in between.
    let gaps = 0;
    for (const [a, b] of final.flatMap((x) => x.suspects)) {
      const page = (await fetch(`${herald.url}/v1/events?channel=${CHANNEL}&after=${a}&limit=1`).then((r) => r.json())) as { events: { id: string }[] };
      if (page.events.length > 0 && parsePosition(page.events[0]!.id).seq < b) gaps++;
    }
    const sum = (k: keyof SoakStats) => final.reduce((acc, x) => acc + (x[k] as number), 0);
    const suspects = sum('suspectCount');
    const checked = final.reduce((acc, x) => acc + x.suspects.length, 0);

    const warmIdx = samples.findIndex((x) => x.at >= runMs * warmupShare);
    const warm = samples.slice(warmIdx, warmIdx + SAMPLES_AVERAGED);
    const tail = samples.slice(-SAMPLES_AVERAGED);
    const flat = (name: string, pick: (x: Sample) => number, unit: (v: number) => string) => {
      const a = mean(warm.map(pick));
      const b = mean(tail.map(pick));
      const change = (b - a) / a;
      checks.push({ name: `${name} flat within ${FLAT_SHARE * 100} %`, ok: Math.abs(change) <= FLAT_SHARE, detail: `${unit(a)} after warm-up → ${unit(b)} at the end (${(change * 100).toFixed(1)} %)` });
    };
    const lags = samples.slice(warmIdx).map((x) => x.lagP99).filter((x): x is number => x !== undefined);
    flat('Herald RSS', (x) => x.rss, (v) => `${(v / 2 ** 20).toFixed(1)} MiB`);
    const heap = (xs: Sample[]) => (mean(xs.map((x) => x.heapUsed ?? NaN)) / 2 ** 20).toFixed(1);
    checks[checks.length - 1]!.detail += `; V8 heap in use ${heap(warm)} → ${heap(tail)} MiB`;
    // Connections churn, so how many are open at a sample moves by a few percent: a leak shows as
    // open files per open connection growing, the raw count is shown beside it.
    flat('Herald open files per open connection', (x) => x.fds / x.open, (v) => v.toFixed(3));
    checks[checks.length - 1]!.detail += `; raw ${mean(warm.map((x) => x.fds)).toFixed(0)} → ${mean(tail.map((x) => x.fds)).toFixed(0)} open files, ${mean(warm.map((x) => x.open)).toFixed(0)} → ${mean(tail.map((x) => x.open)).toFixed(0)} open connections`;
    checks.push({ name: 'publishes all acknowledged', ok: publishFailures === 0, detail: `${published} acknowledged, ${publishFailures} failed` });
    checks.push({ name: 'no gap', ok: gaps === 0 && checked === suspects, detail: `${gaps} gaps in ${suspects} id jumps (${checked} checked against the log)` });
    checks.push({ name: 'no duplicate', ok: sum('duplicates') === 0, detail: `${sum('duplicates')} duplicates` });
    checks.push({ name: 'no reset', ok: sum('resets') === 0, detail: `${sum('resets')} reset signals` });
    checks.push({ name: 'every connection reached the head', ok: behind === 0, detail: `${behind} behind event ${headId} after the last publish` });

    const lines = [
      `Soak: ${minutes} min, ${connections} connections (${sse} SSE, ${ws} WebSocket) over ${workerCount} processes, ${rate} publishes/s, warm-up ${Math.round((runMs * warmupShare) / 1000)} s`,
      `events delivered: ${sum('events')}; reconnects with resume: ${sum('reconnects')} (${sum('deepResumes')} from ${DEEP_RESUME_EVENTS} events back); closed by the server: ${sum('serverCloses')}; failed connects: ${sum('connectFailures')}${final.find((x) => x.lastError)?.lastError ? ` (${final.find((x) => x.lastError)!.lastError})` : ''}`,
      `idle Herald before the load: RSS ${mib(rssBefore)}, V8 heap in use ${mib(heapBefore)}; ${IDLE_AFTER_MS / 1000} s after every connection closed: RSS ${mib(rssIdle)}, V8 heap in use ${mib(heapIdle)}, open files ${fdsIdle} (${fdsBefore} right after the close)`,
      `event-loop delay p99 (prom-client, per ${SAMPLE_MS / 1000} s sample after warm-up): median ${(quantile(lags, 0.5) * 1000).toFixed(1)} ms, worst ${(Math.max(...lags) * 1000).toFixed(1)} ms`,
      ...checks.map((c) => `${c.ok ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`),
    ];
    process.stdout.write(lines.join('\n') + '\n');
    if (values.samples) writeFileSync(values.samples, JSON.stringify(samples, null, 1));
  } finally {
    await Promise.all([...workers.map((w) => w.close()), publisher.close()]);
    await herald.stop();
  }
  return checks.every((c) => c.ok) ? 0 : 1;
}

function log(msg: string): void {
  process.stderr.write(`[soak] ${msg}\n`);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
