import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { ChildRpc } from './bench-ipc.js';
import { LatencyHistogram } from './bench-protocol.js';
import { ROOT, Target, waitForQuiet } from './bench-targets.js';
import { LocalPostgres } from './local-postgres.js';
import { LocalRedis, type Aof } from './local-redis.js';
import { LoadDriver, type Measurement } from './load-driver.js';
import type { AckArgs, AckResult } from './ack-publisher.js';
import { RedisEventStore } from '../src/stores/redis-event-store.js';

/**
 * The cluster suite: Herald on one process (SQLite), on one machine with `--workers 2` (SQLite,
 * one file), and as two nodes sharing one log on Redis, each a real `herald` process, with a
 * Redis of its own started for the run on a free loopback port. Per configuration: burst
 * deliveries/s and p99 at 1,000 subscribers x 200/s (the fan-out suite's load driver, half the
 * subscribers on each node; every publish to the first node), acknowledged publishes/s (many
 * concurrent publishers, 1 and 100 events per request, spread over the nodes), and how many
 * idle SSE connections one process and `--workers 2` hold, and whether one machine
 * (`--workers 6`, subscribers from eight source addresses) holds 100,000. Then the Redis append cost with AOF
 * (`appendfsync everysec`, `always`) and the floor: the append script from a bare client.
 *
 * Run: `npm run build && node dist/bench/cluster.js [--quick]`, or `npm run bench -- --suites cluster`.
 */

const CONFIGS = ['sqlite-1', 'workers-2', 'workers-6', 'redis-2', 'postgres-1', 'postgres-2'] as const;
type ConfigName = (typeof CONFIGS)[number];
const LABELS: Record<ConfigName, string> = {
  'sqlite-1': 'one node, SQLite',
  'workers-2': '--workers 2, SQLite',
  'workers-6': '--workers 6, SQLite (one machine)',
  'redis-2': 'two nodes, Redis',
  'postgres-1': 'one node, Postgres',
  'postgres-2': 'two nodes, Postgres',
};

/** Targets of the issue, as ratios to one node and as a rate. */
const BURST_RATIO_MIN = 0.8;
const P99_RATIO_MAX = 1.5;
const REDIS_ACKED_EVENTS_PER_SEC_MIN = 20_000;
/** Acknowledged events/s two nodes on Postgres must reach, group commit included. */
const POSTGRES_ACKED_EVENTS_PER_SEC_MIN = 5_000;
const WORKERS_CONNECTIONS_RATIO_MIN = 2;

/** Subscribers and rates of the fan-out figures (as the fan-out suite's steady and burst). */
const SUBSCRIBERS = 1_000;
const STEADY_RATE = 200;
const BURST_COUNT = 2_000;
const BURST_INFLIGHT = 32;
/**
 * Rounds of the interleaved p99 step: each round measures one steady window on every
 * configuration in turn, all deployed at once; a configuration's p99 is its median window. One
 * 10 s window's p99 moves by 2x from run to run on a loaded 2-core machine (a GC pause or a
 * descheduled process lands in it or not, the load of the minutes before differs), so the
 * p99 ratios between configurations compare medians of windows taken side by side.
 */
const INTERLEAVED_ROUNDS = 3;
/** The configurations whose p99 the targets compare (the interleaved step). */
const P99_CONFIGS: readonly ConfigName[] = ['sqlite-1', 'workers-2', 'redis-2', 'postgres-1', 'postgres-2'];
/** Publishes to a channel nobody follows before the first window: the publish path is optimized. */
const WARMUP_PUBLISHES = 5_000;
/** Acknowledged-publish runs: processes, and concurrent publishers (connections) in each. */
const ACK_PROCESSES = 2;
const ACK_CONNECTIONS_PER_PROCESS = 32;
/** Connections opened per step while finding how many a server holds, and the bound. */
const HOLD_STEP = 5_000;
const HOLD_BOUND_DEFAULT = 40_000;
/** Subscriber processes: 40,000 connections at 10,000 each, under the 20,000 files a process may open. */
const CLIENT_PROCESSES = 4;
/**
 * One machine: Herald's workers (each a process under the 20,000-files limit: 6 hold ~120,000),
 * the idle connections they are asked to hold, how many are opened per step, and the subscriber
 * processes that open them (12,500 each, from source addresses of their own: one address has
 * ~28,000 ports towards one server port).
 */
const MACHINE_WORKERS = 6;
const MACHINE_HOLD_BOUND = 100_000;
const MACHINE_HOLD_STEP = 10_000;
const MACHINE_CLIENT_PROCESSES = 8;
/** Longest `herald --workers 6` may take to listen on two cores. */
const MACHINE_START_TIMEOUT_MS = 120_000;
/** milliseconds held connections are left before they are counted again and RSS is read. */
const SETTLE_MS = 2_000;
/** Appends in flight from the bare client of the floor (one connection: ioredis pipelines them). */
const FLOOR_APPENDS_IN_FLIGHT = 64;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One configuration running: its Herald processes and, on Redis, the Redis they share. */
interface Deployment {
  nodes: Target[];
  redis?: LocalRedis;
  postgres?: LocalPostgres;
}

/** Deployments running now: stopped on SIGINT or SIGTERM, so no server outlives the run. */
const live = new Set<Deployment>();

async function deploy(config: ConfigName, aof: Aof = 'off'): Promise<Deployment> {
  const d = await start(config, aof);
  live.add(d);
  return d;
}

async function start(config: ConfigName, aof: Aof): Promise<Deployment> {
  const base = { kind: 'herald', transport: 'sse', store: 'sqlite', sync: 'full' } as const;
  if (config === 'sqlite-1') return { nodes: [await Target.start(base)] };
  if (config === 'workers-2') return { nodes: [await Target.start({ ...base, heraldArgs: ['--workers', '2'] })] };
  if (config === 'workers-6') {
    return { nodes: [await Target.start({ ...base, heraldArgs: ['--workers', String(MACHINE_WORKERS)], startTimeoutMs: MACHINE_START_TIMEOUT_MS })] };
  }
  if (config === 'postgres-1' || config === 'postgres-2') {
    const postgres = await LocalPostgres.start();
    const nodes: Target[] = [];
    try {
      // One node first: it migrates the schema, the second finds it done.
      for (let i = 0; i < (config === 'postgres-1' ? 1 : 2); i++) nodes.push(await Target.start({ ...base, backend: { type: 'postgres', url: postgres.url } }));
    } catch (err) {
      await Promise.all(nodes.map((n) => n.stop()));
      await postgres.stop();
      throw err;
    }
    return { nodes, postgres };
  }
  const redis = await LocalRedis.start(aof);
  const backend = { type: 'redis', url: redis.url, keyPrefix: 'bench' };
  const nodes: Target[] = [];
  try {
    for (let i = 0; i < 2; i++) nodes.push(await Target.start({ ...base, backend }));
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.stop();
    throw err;
  }
  return { nodes, redis };
}

async function undeploy(d: Deployment): Promise<void> {
  live.delete(d);
  await Promise.all(d.nodes.map((n) => n.stop()));
  await d.redis?.stop();
  await d.postgres?.stop();
}

/** The subscriber processes of the one-machine figure, started when first needed and closed at the end. */
let machineDriver: LoadDriver | undefined;
function machineLoad(): LoadDriver {
  if (!machineDriver) {
    machineDriver = new LoadDriver(MACHINE_CLIENT_PROCESSES);
    machineDriver.sourceAddresses = Array.from({ length: MACHINE_CLIENT_PROCESSES }, (_, i) => `127.0.0.${21 + i}`);
  }
  return machineDriver;
}

const gib = (bytes: number) => `${(Math.abs(bytes) < 2 ** 30 / 200 ? 0 : bytes / 2 ** 30).toFixed(2)} GiB`;

const heraldCpuMs = (d: Deployment) => d.nodes.reduce((a, n) => a + n.cpuMs(), 0);

interface AckFigure {
  batch: number;
  /** Concurrent publishers (keep-alive connections, one request in flight on each). */
  publishers: number;
  eventsPerSec: number;
  failed: number;
  failures: Record<string, number>;
  p50: number;
  p99: number;
  /** Share of one core used by Herald (all its processes) and by its Redis or Postgres server during the run. */
  heraldCpuShare: number;
  /** Herald's CPU time per answered request, in µs: what one request costs, whatever the load. */
  heraldCpuUsPerRequest: number;
  dbCpuShare: number;
  publishersCpuShare: number;
}

/** Many publishers for `ms`, spread over the nodes (publisher process i to node i mod n). */
/**
 * Acknowledged publishes for `ms`: `processes` publisher processes (process i to node i) with
 * `connections` publishers each. One publisher alone measures the latency of one acknowledged
 * publish (each waits for the last); many measure the throughput.
 */
async function ackedPublishes(d: Deployment, allPubs: ChildRpc[], batch: number, ms: number, connections = ACK_CONNECTIONS_PER_PROCESS, processes = allPubs.length): Promise<AckFigure> {
  const pubs = allPubs.slice(0, processes);
  const db = d.postgres ?? d.redis;
  const cpu0 = heraldCpuMs(d);
  const db0 = db?.cpuMs() ?? 0;
  const pub0 = await Promise.all(pubs.map((p) => p.call<number>('cpu')));
  const wall0 = Date.now();
  const results = await Promise.all(
    pubs.map((p, i) =>
      p.call<AckResult>('run', { url: d.nodes[i % d.nodes.length]!.url, connections, batch, durationMs: ms } satisfies AckArgs),
    ),
  );
  const wall = Date.now() - wall0;
  const pub1 = await Promise.all(pubs.map((p) => p.call<number>('cpu')));
  const h = new LatencyHistogram();
  const failures: Record<string, number> = {};
  let events = 0;
  let failed = 0;
  let requests = 0;
  for (const r of results) {
    requests += r.requests;
    h.merge(r.histogram);
    failed += r.failed;
    for (const [k, v] of Object.entries(r.failures)) failures[k] = (failures[k] ?? 0) + v;
    // Each process's rate over its own window: they run side by side, so the rates add.
    events += r.events / (r.elapsedMs / 1000);
  }
  return {
    batch,
    publishers: connections * pubs.length,
    eventsPerSec: events,
    failed,
    failures,
    p50: h.quantile(0.5),
    p99: h.quantile(0.99),
    heraldCpuShare: (heraldCpuMs(d) - cpu0) / wall,
    heraldCpuUsPerRequest: ((heraldCpuMs(d) - cpu0) * 1000) / Math.max(1, requests),
    dbCpuShare: db ? (db.cpuMs() - db0) / wall : 0,
    publishersCpuShare: pub1.reduce((a, b, i) => a + b - pub0[i]!, 0) / wall,
  };
}

interface Held {
  bound: number;
  held: number;
  refused: number;
  error?: string;
  rssPerConnection: number;
  /** Resident memory of the server (every process) while holding them. */
  rssBytes: number;
  /** Growth of the subscriber processes' resident memory (the other end of every connection). */
  clientsBytes: number;
  /** Growth of the kernel's TCP buffer memory (`mem` of /proc/net/sockstat, pages of 4 KiB). */
  kernelTcpBytes: number;
  /** Connections opened per second while opening them (accepted, answered and counted open). */
  openedPerSec: number;
  /** The same, step by step (`step` connections each): whether opening slows down as more are held. */
  stepRates: number[];
  step: number;
}

/** The kernel's TCP buffer memory now, in bytes (`TCP: ... mem N` of /proc/net/sockstat, in pages). */
function kernelTcpBytes(): number {
  const m = /^TCP:.* mem (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'));
  return m ? Number(m[1]) * 4096 : NaN;
}

/** Opens idle SSE connections in steps until one is refused or the bound is reached. */
async function connectionsHeld(d: Deployment, load: LoadDriver, bound: number, step = HOLD_STEP): Promise<Held> {
  const node = d.nodes[0]!;
  load.useTarget('sse', node.url, node.streamUrl, () => heraldCpuMs(d));
  const rss0 = node.rssBytes();
  const clients0 = load.clientsRssBytes();
  const tcp0 = kernelTcpBytes();
  const t0 = Date.now();
  let refused = 0;
  let error: string | undefined;
  const stepRates: number[] = [];
  for (let want = step; want <= bound && refused === 0; want += step) {
    const ts = Date.now();
    const before = load.connections;
    const r = await load.tryConnectTo(want);
    stepRates.push(Math.round((load.connections - before) / ((Date.now() - ts) / 1000)));
    refused = r.failed;
    error = r.error;
  }
  const openedPerSec = load.connections / ((Date.now() - t0) / 1000);
  await sleep(SETTLE_MS);
  const held = await load.openNow();
  const rss = node.rssBytes();
  const figures = { stepRates, step, rssBytes: rss, clientsBytes: load.clientsRssBytes() - clients0, kernelTcpBytes: kernelTcpBytes() - tcp0, openedPerSec };
  await load.closeTo(0);
  return { bound, held, refused, ...(error ? { error } : {}), rssPerConnection: held > 0 ? (rss - rss0) / held : NaN, ...figures };
}

interface ConfigResult {
  config: ConfigName;
  steady?: Steady;
  /** The interleaved step's windows (INTERLEAVED_ROUNDS), in the order measured. */
  interleaved?: Steady[];
  burst?: Measurement;
  acked: AckFigure[];
  held?: Held;
  error?: string;
}

async function quiet(say: (s: string) => void): Promise<void> {
  const q = await waitForQuiet();
  if (!q.quiet) say(`warning: the machine stays busy (${Math.round(q.idle * 100)}% idle); figures will be noisy`);
}

/** Points the load at a deployment (publishes to its first node), opens SUBSCRIBERS streams and warms the publish path up. */
async function warmUp(d: Deployment, load: LoadDriver): Promise<void> {
  const first = d.nodes[0]!;
  load.useTarget('sse', first.url, d.nodes.map((n) => n.streamUrl), () => heraldCpuMs(d));
  await load.connectTo(20);
  await load.waitLive();
  await load.measure({ mode: 'burst', count: 200, inflight: BURST_INFLIGHT });
  await load.connectTo(SUBSCRIBERS);
  await load.waitLive();
  for (const n of d.nodes) {
    load.useTarget('sse', n.url, d.nodes.map((x) => x.streamUrl), () => heraldCpuMs(d));
    await load.publishUnmeasured({ channel: 'bench-warmup', count: WARMUP_PUBLISHES, inflight: BURST_INFLIGHT });
  }
  load.useTarget('sse', first.url, d.nodes.map((n) => n.streamUrl), () => heraldCpuMs(d));
}

/**
 * The p99 figures the targets compare: every configuration deployed at once (an idle one costs
 * next to nothing), then `rounds` rounds of one steady window on each in turn, the subscribers
 * moved to the configuration measured. Resolves to each configuration's windows, in order.
 */
async function interleavedP99(configs: readonly ConfigName[], load: LoadDriver, o: Options, say: (s: string) => void): Promise<Map<ConfigName, Steady[]>> {
  const out = new Map<ConfigName, Steady[]>();
  const deployed: [ConfigName, Deployment][] = [];
  try {
    for (const c of configs) deployed.push([c, await deploy(c)]);
    for (const [c, d] of deployed) {
      await warmUp(d, load);
      await load.closeTo(0);
      out.set(c, []);
    }
    for (let r = 1; r <= o.rounds; r++) {
      for (const [c, d] of deployed) {
        load.useTarget('sse', d.nodes[0]!.url, d.nodes.map((n) => n.streamUrl), () => heraldCpuMs(d));
        await load.connectTo(SUBSCRIBERS);
        await load.waitLive();
        await quiet(say);
        const m = await steadyWindow(d, load, o);
        out.get(c)!.push(m);
        say(`interleaved round ${r}/${o.rounds}, ${LABELS[c]}: steady ${describe(m)}`);
        await load.closeTo(0);
      }
    }
  } finally {
    await load.closeTo(0).catch(() => undefined);
    await Promise.all(deployed.map(([, d]) => undeploy(d)));
  }
  return out;
}

type Steady = Measurement & { dbCpuShare?: number };

/** A steady window, with the share of a core the deployment's Postgres or Redis server used in it. */
async function steadyWindow(d: Deployment, load: LoadDriver, o: Options): Promise<Steady> {
  const db = d.postgres ?? d.redis;
  const cpu0 = db?.cpuMs();
  const t0 = performance.now();
  const m = await load.measure({ mode: 'rate', rate: STEADY_RATE, count: STEADY_RATE * o.rateSeconds, inflight: BURST_INFLIGHT });
  return db && cpu0 !== undefined ? { ...m, dbCpuShare: (db.cpuMs() - cpu0) / (performance.now() - t0) } : m;
}

/** The window with the median p99 (the lower middle one of an even count). */
function medianWindow(windows: readonly Measurement[]): Measurement | undefined {
  return [...windows].sort((a, b) => a.p99 - b.p99)[(windows.length - 1) >> 1];
}

async function runConfig(config: ConfigName, load: LoadDriver, pubs: ChildRpc[], o: Options, say: (s: string) => void): Promise<ConfigResult> {
  const result: ConfigResult = { config, acked: [] };
  const d = await deploy(config);
  const label = LABELS[config];
  try {
    if (o.parts.includes('fanout')) {
      await warmUp(d, load);
      await quiet(say);
      result.steady = await steadyWindow(d, load, o);
      say(`${label}: steady ${describe(result.steady)}`);
      await quiet(say);
      result.burst = await load.measure({ mode: 'burst', count: o.burstCount, inflight: BURST_INFLIGHT });
      say(`${label}: burst ${describe(result.burst)}`);
      await load.closeTo(0);
    }
    for (const batch of o.parts.includes('acked') ? [1, 100] : []) {
      await quiet(say);
      const a = await ackedPublishes(d, pubs, batch, o.ackSeconds * 1000);
      result.acked.push(a);
      say(`${label}: acknowledged publishes, ${batch} event(s)/request: ${describeAck(a)}`);
    }
    if (o.parts.includes('acked')) {
      await quiet(say);
      const a = await ackedPublishes(d, pubs, 1, o.ackSeconds * 1000, 1, 1);
      result.acked.push(a);
      say(`${label}: acknowledged publishes, one publisher, 1 event/request: ${describeAck(a)}`);
    }
    const holds = config === 'sqlite-1' || config === 'workers-2' || config === 'workers-6';
    if (holds && o.holdBound > 0 && o.parts.includes('held')) {
      await quiet(say);
      result.held =
        config === 'workers-6'
          ? await connectionsHeld(d, machineLoad(), o.machineHoldBound, MACHINE_HOLD_STEP)
          : await connectionsHeld(d, load, o.holdBound);
      const h = result.held;
      say(
        `${label}: ${h.held} idle SSE connections held (bound ${h.bound}, refused ${h.refused}${h.error ? `: ${h.error}` : ''}), ` +
          `opened at ${n0(h.openedPerSec)}/s (by step of ${n0(h.step)}: ${h.stepRates.map(n0).join(', ')}); server RSS ${gib(h.rssBytes)} (+${(h.rssPerConnection / 1024).toFixed(1)} KiB each), subscriber processes +${gib(h.clientsBytes)}, kernel TCP buffers +${gib(h.kernelTcpBytes)}`,
      );
    }
  } catch (err) {
    result.error = (err as Error).message;
    say(`${label}: FAILED: ${result.error}`);
  } finally {
    await load.closeTo(0).catch(() => undefined);
    await undeploy(d);
  }
  return result;
}

/** Acknowledged publishes to two nodes on a Redis with AOF: what durability on Redis costs. */
async function runAof(aof: Aof, pubs: ChildRpc[], o: Options, say: (s: string) => void): Promise<AckFigure[]> {
  const d = await deploy('redis-2', aof);
  const out: AckFigure[] = [];
  try {
    for (const batch of [1, 100]) {
      await quiet(say);
      const a = await ackedPublishes(d, pubs, batch, o.ackSeconds * 1000);
      out.push(a);
      say(`two nodes, Redis appendfsync ${aof}: acknowledged publishes, ${batch} event(s)/request: ${describeAck(a)}`);
    }
  } finally {
    await undeploy(d);
  }
  return out;
}

interface FloorFigure {
  batch: number;
  eventsPerSec: number;
  appendsPerSec: number;
  redisCpuShare: number;
}

/**
 * The floor: Herald's append script (RedisEventStore.append) from one bare ioredis client, with
 * FLOOR_APPENDS_IN_FLIGHT appends in flight (pipelined on one connection), no HTTP, no hub.
 */
async function redisFloor(batch: number, ms: number): Promise<FloorFigure> {
  const redis = await LocalRedis.start('off');
  const client = new Redis(redis.url, { maxRetriesPerRequest: 0 });
  try {
    const store = new RedisEventStore({ redis: client, prefix: '{bench}:' });
    const inputs = Array.from({ length: batch }, () => ({ channel: 'bench-ack', type: 'message', data: JSON.stringify({ p: 'x'.repeat(90) }) }));
    await store.append(inputs);
    const cpu0 = redis.cpuMs();
    const start = Date.now();
    let appends = 0;
    const lane = async () => {
      while (Date.now() - start < ms) {
        await store.append(inputs);
        appends++;
      }
    };
    await Promise.all(Array.from({ length: FLOOR_APPENDS_IN_FLIGHT }, lane));
    const wall = Date.now() - start;
    return { batch, appendsPerSec: appends / (wall / 1000), eventsPerSec: (appends * batch) / (wall / 1000), redisCpuShare: (redis.cpuMs() - cpu0) / wall };
  } finally {
    client.disconnect();
    await redis.stop();
  }
}

interface Options {
  rateSeconds: number;
  burstCount: number;
  ackSeconds: number;
  holdBound: number;
  /** Idle connections the one-machine configuration (`workers-6`) is asked to hold. */
  machineHoldBound: number;
  /** Which figures to take: `fanout` (burst, p99), `acked`, `held`. */
  parts: readonly string[];
  /** Rounds of the interleaved p99 step (INTERLEAVED_ROUNDS; one with --quick; 0 skips the step). */
  rounds: number;
}

function describe(m: Steady): string {
  return (
    (m.dbCpuShare !== undefined ? `database ${Math.round(100 * m.dbCpuShare)}% of a core, ` : '') +
    `${m.subscribers} subs x ${m.publishes} publishes: ${Math.round(m.deliveriesPerSec)} deliveries/s, p50 ${m.p50.toFixed(2)} ms, ` +
    `p99 ${m.p99.toFixed(2)} ms, lost ${m.lost}, duplicates ${m.duplicates}, Herald CPU ${Math.round(100 * m.serverCpuShare)}% of a core` +
    (m.failedPublishes ? `, failed publishes ${m.failedPublishes} ${JSON.stringify(m.failures)}` : '') +
    (m.latePublishes ? `, late publishes ${m.latePublishes}` : '') +
    (m.perStream ? `; p50/p99 by node: ${m.perStream.map((x, i) => `node ${i + 1}${i === 0 ? ' (publishing)' : ''} ${x.p50.toFixed(1)}/${x.p99.toFixed(1)} ms`).join(', ')}` : '')
  );
}

function describeAck(a: AckFigure): string {
  return (
    `${Math.round(a.eventsPerSec)} events/s, request p50 ${a.p50.toFixed(1)} ms p99 ${a.p99.toFixed(1)} ms, ` +
    `Herald ${Math.round(a.heraldCpuUsPerRequest)} µs CPU/request, Herald ${Math.round(100 * a.heraldCpuShare)}% database ${Math.round(100 * a.dbCpuShare)}% publishers ${Math.round(100 * a.publishersCpuShare)}% of a core` +
    (a.failed ? `, failed ${a.failed} ${JSON.stringify(a.failures)}` : '')
  );
}

const n0 = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '-' : Math.round(x).toLocaleString('en-US'));
const ms2 = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '-' : `${x.toFixed(1)} ms`);

function figuresTable(results: ConfigResult[]): string {
  const rows = [
    '| Configuration | Burst deliveries/s (1,000 subs) | p99 at 1,000 x 200/s | p99 interleaved: median (every window) | Database server CPU, steady (share of a core) | Acked events/s, 1 per request | Acked events/s, 100 per request | Acked events/s, one publisher (request p50) | Idle SSE connections held | RSS per connection |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const r of results) {
    const a1 = r.acked.find((a) => a.batch === 1 && a.publishers > 1);
    const a100 = r.acked.find((a) => a.batch === 100 && a.publishers > 1);
    const lone = r.acked.find((a) => a.publishers === 1);
    const held = r.held ? `${n0(r.held.held)}${r.held.refused ? ' (then refused)' : ` (the bound)`}` : '-';
    const rss = r.held ? `${(r.held.rssPerConnection / 1024).toFixed(1)} KiB` : '-';
    rows.push(`| ${LABELS[r.config]}${r.error ? ` (failed: ${r.error})` : ''} | ${n0(r.burst?.deliveriesPerSec)} | ${ms2(r.steady?.p99)} | ${r.interleaved?.length ? `${ms2(medianWindow(r.interleaved)!.p99)} (${r.interleaved.map((m) => m.p99.toFixed(1)).join(', ')})` : '-'} | ${r.steady?.dbCpuShare !== undefined ? `${Math.round(100 * r.steady.dbCpuShare)}%` : '-'} | ${n0(a1?.eventsPerSec)} | ${n0(a100?.eventsPerSec)} | ${lone ? `${n0(lone.eventsPerSec)} (${lone.p50.toFixed(2)} ms)` : '-'} | ${held} | ${rss} |`);
  }
  return rows.join('\n');
}

function targetsTable(results: ConfigResult[]): string {
  const by = (c: ConfigName) => results.find((r) => r.config === c);
  const one = by('sqlite-1');
  const redis = by('redis-2');
  const workers = by('workers-2');
  const verdict = (ok: boolean | undefined) => (ok === undefined ? 'n/a' : ok ? 'PASS' : 'MISS');
  // p99 from the interleaved step when it ran (the median of windows taken side by side), else the configuration's window.
  const p99 = (r: ConfigResult | undefined) => (r?.interleaved?.length ? medianWindow(r.interleaved)!.p99 : r?.steady?.p99);
  const rows = ['| Target | Figure | Result |', '|---|---|---|'];
  if (one?.burst && redis?.burst) {
    const ratio = redis.burst.deliveriesPerSec / one.burst.deliveriesPerSec;
    rows.push(`| two nodes on Redis: burst >= ${BURST_RATIO_MIN}x one node | ${ratio.toFixed(2)}x (${n0(redis.burst.deliveriesPerSec)} vs ${n0(one.burst.deliveriesPerSec)}/s) | ${verdict(ratio >= BURST_RATIO_MIN)} |`);
  }
  const ratioRow = (what: string, a: ConfigResult | undefined, b: ConfigResult | undefined) => {
    const pa = p99(a);
    const pb = p99(b);
    if (pa === undefined || pb === undefined) return;
    const ratio = pa / pb;
    rows.push(`| ${what} | ${ratio.toFixed(2)}x (${ms2(pa)} vs ${ms2(pb)}) | ${verdict(ratio <= P99_RATIO_MAX)} |`);
  };
  ratioRow(`two nodes on Redis: p99 <= ${P99_RATIO_MAX}x one node`, redis, one);
  for (const a of (redis?.acked ?? []).filter((x) => x.publishers > 1)) {
    rows.push(`| acknowledged publishes through Redis >= ${n0(REDIS_ACKED_EVENTS_PER_SEC_MIN)} events/s (${a.batch} per request) | ${n0(a.eventsPerSec)} events/s | ${verdict(a.eventsPerSec >= REDIS_ACKED_EVENTS_PER_SEC_MIN)} |`);
  }
  const postgresOne = by('postgres-1');
  ratioRow(`one node on Postgres: p99 <= ${P99_RATIO_MAX}x one node on SQLite`, postgresOne, one);
  const postgres = by('postgres-2');
  ratioRow(`two nodes on Postgres: p99 <= ${P99_RATIO_MAX}x one node on SQLite`, postgres, one);
  // The floor of two processes on these cores: two Herald processes on one SQLite log, no database server.
  ratioRow(`two nodes on Postgres: p99 <= ${P99_RATIO_MAX}x two processes on one SQLite log (--workers 2, the floor of two processes here)`, postgres, workers);
  for (const a of (postgres?.acked ?? []).filter((x) => x.publishers > 1)) {
    rows.push(`| acknowledged publishes through Postgres >= ${n0(POSTGRES_ACKED_EVENTS_PER_SEC_MIN)} events/s (${a.batch} per request) | ${n0(a.eventsPerSec)} events/s | ${verdict(a.eventsPerSec >= POSTGRES_ACKED_EVENTS_PER_SEC_MIN)} |`);
  }
  const machine = by('workers-6');
  if (machine?.held) {
    const h = machine.held;
    rows.push(
      `| one machine (--workers ${MACHINE_WORKERS}) holds ${n0(MACHINE_HOLD_BOUND)} idle connections | ${n0(h.held)}${h.refused ? ' (then refused)' : ''}; server RSS ${gib(h.rssBytes)} ` +
        `(+${(h.rssPerConnection / 1024).toFixed(1)} KiB each), subscribers +${gib(h.clientsBytes)}, kernel TCP buffers +${gib(h.kernelTcpBytes)}; opened at ${n0(h.openedPerSec)}/s | ${verdict(h.held >= MACHINE_HOLD_BOUND)} |`,
    );
  }
  if (one?.held && workers?.held) {
    const ratio = workers.held.held / one.held.held;
    const bounded = workers.held.refused === 0 ? `, the bound of ${n0(workers.held.bound)}` : '';
    rows.push(`| --workers 2 holds >= ${WORKERS_CONNECTIONS_RATIO_MIN}x the connections of one process | ${ratio.toFixed(2)}x (${n0(workers.held.held)}${bounded} vs ${n0(one.held.held)}) | ${verdict(ratio >= WORKERS_CONNECTIONS_RATIO_MIN)} |`);
  }
  return rows.join('\n');
}

function aofTable(rows: { aof: Aof; acked: AckFigure[] }[], floor: FloorFigure[]): string {
  const out = ['| Redis persistence | Acked events/s, 1 per request | Acked events/s, 100 per request | Redis CPU (1 / 100 per request) |', '|---|--:|--:|--:|'];
  for (const r of rows) {
    const a1 = r.acked.find((a) => a.batch === 1 && a.publishers > 1);
    const a100 = r.acked.find((a) => a.batch === 100 && a.publishers > 1);
    const pct = (a?: AckFigure) => (a ? `${Math.round(100 * a.dbCpuShare)}%` : '-');
    out.push(`| ${r.aof === 'off' ? 'none (`--appendonly no`)' : `AOF, \`appendfsync ${r.aof}\``} | ${n0(a1?.eventsPerSec)} | ${n0(a100?.eventsPerSec)} | ${pct(a1)} / ${pct(a100)} |`);
  }
  for (const f of floor) {
    out.push(`| floor: the append script from a bare client, ${FLOOR_APPENDS_IN_FLIGHT} appends of ${f.batch} in flight, no HTTP | ${f.batch === 1 ? n0(f.eventsPerSec) : ''} | ${f.batch === 100 ? n0(f.eventsPerSec) : ''} | ${Math.round(100 * f.redisCpuShare)}% (${n0(f.appendsPerSec)} appends/s) |`);
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      configs: { type: 'string' },
      'hold-bound': { type: 'string' },
      'machine-hold-bound': { type: 'string' },
      'no-aof': { type: 'boolean', default: false },
      parts: { type: 'string', default: 'fanout,acked,held' },
      rounds: { type: 'string' },
    },
  });
  const parts = values.parts.split(',');
  const configs = values.configs ? (values.configs.split(',') as ConfigName[]) : [...CONFIGS];
  for (const c of configs) if (!CONFIGS.includes(c)) throw new Error(`--configs: unknown "${c}" (one of ${CONFIGS.join(', ')})`);
  const o: Options = values.quick
    ? { rateSeconds: 3, burstCount: 500, ackSeconds: 2, holdBound: Number(values['hold-bound'] ?? 10_000), machineHoldBound: Number(values['machine-hold-bound'] ?? 20_000), parts, rounds: Number(values.rounds ?? 1) }
    : { rateSeconds: 10, burstCount: BURST_COUNT, ackSeconds: 5, holdBound: Number(values['hold-bound'] ?? HOLD_BOUND_DEFAULT), machineHoldBound: Number(values['machine-hold-bound'] ?? MACHINE_HOLD_BOUND), parts, rounds: Number(values.rounds ?? INTERLEAVED_ROUNDS) };
  if (!Number.isInteger(o.rounds) || o.rounds < 0) throw new Error('--rounds: a whole number >= 0');
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void Promise.all([...live].map(undeploy)).finally(() => process.exit(130)));
  }
  const started = Date.now();
  const say = (s: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${s}`);
  const loadBefore = loadavg().map((l) => l.toFixed(2)).join(', ');
  say(`cluster: ${cpus().length} cores, Node.js ${process.version}, load average ${loadBefore}; publishes of the fan-out figures go to the first node, acknowledged publishes to every node (publisher process i to node i)`);
  const load = new LoadDriver(CLIENT_PROCESSES);
  // 40,000 connections to one port are more than one source address has ports for (~28,000).
  load.sourceAddresses = Array.from({ length: CLIENT_PROCESSES }, (_, i) => `127.0.0.${11 + i}`);
  const pubs = Array.from({ length: ACK_PROCESSES }, (_, i) => new ChildRpc(join(ROOT, 'dist/bench/ack-publisher.js'), `ack publisher ${i}`));
  const results: ConfigResult[] = [];
  const paired = P99_CONFIGS.filter((c) => configs.includes(c));
  const aof: { aof: Aof; acked: AckFigure[] }[] = [];
  const floor: FloorFigure[] = [];
  try {
    for (const c of configs) {
      say(`--- ${LABELS[c]} ---`);
      results.push(await runConfig(c, load, pubs, o, say));
    }
    if (parts.includes('fanout') && o.rounds > 0 && paired.length > 1) {
      say(`--- interleaved p99: ${paired.map((c) => LABELS[c]).join(', ')} ---`);
      const windows = await interleavedP99(paired, load, o, say);
      for (const [c, w] of windows) {
        const r = results.find((x) => x.config === c);
        if (r) r.interleaved = w;
      }
    }
    if (configs.includes('redis-2') && parts.includes('acked') && !values['no-aof']) {
      const plain = results.find((r) => r.config === 'redis-2');
      if (plain) aof.push({ aof: 'off', acked: plain.acked });
      for (const a of ['everysec', 'always'] as const) aof.push({ aof: a, acked: await runAof(a, pubs, o, say) });
      for (const batch of [1, 100]) {
        await quiet(say);
        const f = await redisFloor(batch, o.ackSeconds * 1000);
        floor.push(f);
        say(`floor, append script from a bare client, ${batch} event(s) per append: ${n0(f.eventsPerSec)} events/s, ${n0(f.appendsPerSec)} appends/s, Redis ${Math.round(100 * f.redisCpuShare)}% of a core`);
      }
    }
  } finally {
    await load.close();
    await machineDriver?.close();
    await Promise.all(pubs.map((p) => p.close()));
  }
  const loadAfter = loadavg().map((l) => l.toFixed(2)).join(', ');
  const tables = [targetsTable(results), figuresTable(results), ...(aof.length ? [aofTable(aof, floor)] : [])].join('\n\n');
  console.log(`\n${tables}\n`);
  const complete = !values.quick && configs.length === CONFIGS.length && parts.length === 3 && aof.length > 0;
  const page =
    `# Herald cluster benchmark\n\n` +
    `${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}, \`node dist/bench/cluster.js${process.argv.length > 2 ? ' ' + process.argv.slice(2).join(' ') : ''}\`, ` +
    `${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node.js ${process.version}, load average before ${loadBefore}; after ${loadAfter}.\n\n` +
    `SQLite with synchronous=full (an fsync per group commit); Redis ${'`redis-server`'} and Postgres (scripts/services/postgres.sh, fsync on) started for the run on loopback. ` +
    `Burst and p99: ${SUBSCRIBERS} SSE subscribers spread over ${CLIENT_PROCESSES} processes (on two nodes, half on each), every publish to the first node. ` +
    `p99: one steady window of ${o.rateSeconds} s per configuration, then (targets) the interleaved step: ${paired.join(', ')} deployed at once, ${o.rounds} round(s) of one window on each in turn, the median window. ` +
    `Acknowledged publishes: ${ACK_PROCESSES} processes x ${ACK_CONNECTIONS_PER_PROCESS} keep-alive publishers for ${o.ackSeconds} s, process i to node i, counted on 201 only; then one publisher alone (each request sent when the last is answered) to the first node.\n\n` +
    `${tables}\n`;
  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, complete ? 'cluster.md' : 'cluster-partial.md');
  writeFileSync(out, page);
  say(`done; load average ${loadAfter}; written to ${out.slice(ROOT.length)}`);
  if (results.some((r) => r.error)) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(`cluster bench: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
