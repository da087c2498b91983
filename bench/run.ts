import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Transport } from './bench-protocol.js';
import { goalsTable, figuresTable, pairedTable, peersTable, resultsPage, type RunInfo } from './bench-report.js';
import { FULL, QUICK, SCENARIOS, runPaired, runSuite, type PairedWindow, type Scenario, type SuiteResult } from './bench-suite.js';
import { newestProfile, ROOT, waitForQuiet, type TargetKind } from './bench-targets.js';
import { checkPeer, PEERS, type PeerCheck, type PeerKind } from './peers.js';
import { LoadDriver } from './load-driver.js';
import { formatProfile, summarizeProfile } from './profile-summary.js';

/** The benchmark suites `npm run bench` runs, in order; all but fanout are scripts of their own. */
const SUITES = ['fanout', 'write-cost', 'webhooks-in', 'webhooks-out', 'kafka', 'cluster'] as const;
type Suite = (typeof SUITES)[number];
const TARGETS: readonly TargetKind[] = ['herald', 'naive', 'floor', ...PEERS];

const USAGE = `npm run bench -- [options]

Runs Herald, the naive baselines (plain node:http SSE, plain ws broadcast), the floor (the least
a Node.js server can do: bench/floor-server.ts) and its peers (nchan on nginx, Centrifugo v6:
bench/peers.ts) as child processes, with subscribers in several child processes and one
publisher, and prints every figure against its goal. A full run takes about 12 minutes.

  --quick                 smaller sizes and shorter windows (a smoke run; about 2 minutes)
  --targets LIST          of ${TARGETS.join(',')}: servers to run (default: all;
                          a peer that cannot run here is reported as skipped, with why)
  --transports sse,ws     subscriber transports (default: both)
  --scenarios LIST        of ${SCENARIOS.join(',')} (default: all)
  --store sqlite|memory   Herald's log (default: sqlite, the embedded default)
  --sync full|normal      SQLite synchronous (default: full, Herald's default: an fsync per commit)
  --workers N             subscriber processes (default 4; at least 2 for 10,000 connections)
  --inflight N            publish requests in flight at most (default ${FULL.inflight})
  --profile               run Herald with --cpu-prof and print where its CPU time went
  --suites LIST           of ${SUITES.join(',')} (default: all). fanout is the table
                          above; the others run their own scripts after it:
                          write-cost (dist/bench/write-cost.js: CPU per loopback
                          write and read on this machine), webhooks-in
                          (dist/bench/webhooks-in.js), webhooks-out
                          (dist/bench/webhooks-out.js: on SQLite, Redis and Postgres;
                          a backend whose server cannot start is reported skipped), kafka (dist/bench/kafka.js, needs a
                          broker: bash scripts/services/kafka.sh start), cluster
                          (dist/bench/cluster.js: one node, --workers 2, two nodes on a
                          Redis it starts; needs redis-server on the PATH)
  --results NAME          write the results page to bench/results/NAME (say peers.md)
                          instead of latest.md or partial.md
  --help

A full run with every scenario and server writes bench/results/latest.md; any other run writes
bench/results/partial.md.`;

function list<T extends string>(value: string | undefined, allowed: readonly T[], name: string): T[] {
  if (value === undefined) return [...allowed];
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const i of items) if (!allowed.includes(i as T)) throw new Error(`--${name}: unknown "${i}" (one of ${allowed.join(', ')})`);
  return items as T[];
}

/** Runs one of the other suites' scripts as its own process, its output shown as it comes. */
function runScript(suite: Exclude<Suite, 'fanout'>, args: string[]): Promise<number> {
  const child = spawn(process.execPath, [join(ROOT, `dist/bench/${suite}.js`), ...args], { stdio: 'inherit' });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      targets: { type: 'string' },
      transports: { type: 'string' },
      scenarios: { type: 'string' },
      store: { type: 'string', default: 'sqlite' },
      sync: { type: 'string', default: 'full' },
      workers: { type: 'string', default: '4' },
      inflight: { type: 'string' },
      profile: { type: 'boolean', default: false },
      suites: { type: 'string' },
      results: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const suites = list<Suite>(values.suites, SUITES, 'suites');
  const targets = list<TargetKind>(values.targets, TARGETS, 'targets');
  const transports = list<Transport>(values.transports, ['sse', 'ws'], 'transports');
  const scenarios = list<Scenario>(values.scenarios, SCENARIOS, 'scenarios');
  const [store] = list(values.store, ['sqlite', 'memory'] as const, 'store');
  const [sync] = list(values.sync, ['full', 'normal'] as const, 'sync');
  if (values.results !== undefined && !/^[\w.-]+\.md$/.test(values.results)) throw new Error('--results: a file name ending in .md');
  const workers = Number(values.workers);
  const sizes = { ...(values.quick ? QUICK : FULL) };
  if (values.inflight) sizes.inflight = Number(values.inflight);
  if (!Number.isInteger(workers) || workers < 1) throw new Error('--workers is a positive integer');
  if (Math.ceil(sizes.large / workers) > 15_000) throw new Error(`--workers: ${workers} is too few for ${sizes.large} connections`);

  const resultsDir = join(ROOT, 'bench/results');
  const profileDir = values.profile ? join(resultsDir, 'profiles') : undefined;
  mkdirSync(profileDir ?? resultsDir, { recursive: true });
  const complete = !values.quick && targets.length === TARGETS.length && transports.length === 2 && scenarios.length === SCENARIOS.length;
  const info: RunInfo = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpus: `${cpus().length} cores (${cpus()[0]?.model ?? '?'})`,
    node: process.version,
    loadBefore: loadavg().map((l) => l.toFixed(2)).join(', '),
    store: store === 'sqlite' ? `sqlite (the embedded default), WAL, synchronous=${sync}${sync === 'full' ? ' (the default)' : ''}` : 'memory',
    workers,
    quick: values.quick,
    command: `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`,
    peers: [],
  };
  const started = Date.now();
  const say = (s: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${s}`);
  say(`${info.cpus}, Node.js ${info.node}, load average ${info.loadBefore}`);
  if (loadavg()[0]! > cpus().length / 2) say('warning: the machine is busy; figures will be noisy (see `uptime`)');
  say(`servers ${targets.join(', ')}; transports ${transports.join(', ')}; scenarios ${scenarios.join(', ')}; store ${info.store}`);

  if (!suites.includes('fanout')) {
    await runOtherSuites(suites, values.quick, sync, say);
    return;
  }
  // Peers are found (or built: Centrifugo's go install, once) before any load starts.
  const peers = new Map<PeerKind, PeerCheck>();
  for (const kind of targets) {
    if (!(PEERS as readonly string[]).includes(kind)) continue;
    const check = checkPeer(kind as PeerKind, ROOT);
    peers.set(kind as PeerKind, check);
    say(check.ok ? `${kind}: ${check.version}` : `${kind}: skipped: ${check.reason}`);
    if (check.ok) info.peers.push(`${kind}: ${check.version}`);
  }
  const load = new LoadDriver(workers);
  const results: SuiteResult[] = [];
  const notes: string[] = [];
  let paired: PairedWindow[] = [];
  const onSignal = () => {
    void load.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  try {
    for (const transport of transports) {
      for (const kind of targets) {
        const peer = peers.get(kind as PeerKind);
        if (peer && !peer.ok) {
          results.push({ kind, transport, slowCutOffs: 0, skipped: peer.reason });
          continue;
        }
        say(`--- ${kind} ${transport} ---`);
        const r = await runSuite(kind, transport, load, { sizes, scenarios, store, sync, profileDir, peerBin: peer?.ok ? peer.bin : undefined, say });
        results.push(r);
        if (profileDir && kind === 'herald') {
          const file = newestProfile(profileDir);
          if (file) {
            const text = formatProfile(summarizeProfile(file), file.slice(ROOT.length));
            console.log(text);
            notes.push(`Herald ${transport} profile:\n\n\`\`\`\n${text}\n\`\`\``);
          }
        }
      }
    }
    // Herald's two transports in the same windows: their p99 ratio without the noise between windows.
    if (targets.includes('herald') && transports.includes('sse') && transports.includes('ws') && scenarios.includes('steady')) {
      say('--- herald sse+ws: both transports in the same steady windows ---');
      const r = await runPaired(load, { sizes, store, sync, say });
      paired = r.windows;
      if (r.error) say(`herald sse+ws: FAILED: ${r.error}`);
    }
  } finally {
    await load.close();
  }
  const pairedText = pairedTable(paired, sizes);
  if (pairedText) {
    notes.push(
      `SSE and WebSocket in the same windows (one Herald, subscriber processes alternating transports, opened in turns; the same publishes reach both):\n\n${pairedText}`,
    );
  }
  info.loadBefore += `; after: ${loadavg().map((l) => l.toFixed(2)).join(', ')}`;
  const page = resultsPage(results, sizes, info, notes);
  const out = join(resultsDir, values.results ?? (complete ? 'latest.md' : 'partial.md'));
  writeFileSync(out, page);
  const beside = peersTable(results, sizes);
  console.log('\n' + goalsTable(results, sizes) + '\n\n' + (beside ? beside + '\n\n' : '') + figuresTable(results, sizes) + '\n' + (pairedText ? '\n' + pairedText + '\n' : ''));
  for (const r of results) if (r.skipped) say(`${r.kind} ${r.transport}: skipped: ${r.skipped}`);
  say(`done in ${((Date.now() - started) / 1000).toFixed(0)} s; written to ${out.slice(ROOT.length)}`);
  if (results.some((r) => r.error)) process.exitCode = 1;
  await runOtherSuites(suites, values.quick, sync, say);
}

async function runOtherSuites(suites: Suite[], quick: boolean, sync: string, say: (s: string) => void): Promise<void> {
  const sizes = quick ? { seconds: '3', events: '2000', records: '10000' } : { seconds: '5', events: '10000', records: '100000' };
  // Each suite starts on a quiet machine: the previous one's processes and sockets are gone.
  const quiet = async () => {
    const q = await waitForQuiet();
    if (!q.quiet) say(`warning: the machine stays busy (${Math.round(q.idle * 100)}% idle); figures will be noisy`);
  };
  if (suites.includes('write-cost')) {
    await quiet();
    say('--- write cost: CPU per loopback TCP write and read on this machine, bare node:net (no server logic) ---');
    const args = quick ? ['--connections', '1000', '--rounds', '5'] : [];
    if ((await runScript('write-cost', args)) !== 0) process.exitCode = 1;
  }
  if (suites.includes('webhooks-in')) {
    await quiet();
    say('--- inbound webhooks: signed Stripe webhooks, p99 at 1,000/s and the highest rate under 50 ms ---');
    if ((await runScript('webhooks-in', ['--seconds', sizes.seconds, '--sync', sync])) !== 0) process.exitCode = 1;
  }
  if (suites.includes('webhooks-out')) {
    await quiet();
    say('--- outbound webhooks: deliveries/s to a local receiver (1 and 100 endpoints), lag at 1,000 events/s, on SQLite, Redis and Postgres ---');
    const args = ['--events', sizes.events, '--seconds', sizes.seconds, '--backends', 'sqlite,redis,postgres'];
    if ((await runScript('webhooks-out', args)) !== 0) process.exitCode = 1;
  }
  if (suites.includes('kafka')) {
    await quiet();
    say('--- Kafka in: records/s into the log and out to 1,000 SSE subscribers, produce-to-receipt p99 ---');
    if (!process.env.HERALD_TEST_KAFKA_BROKERS && !(await brokerAnswers('127.0.0.1', 19092))) {
      say('kafka: skipped, no broker: run `bash scripts/services/kafka.sh start` (or set HERALD_TEST_KAFKA_BROKERS)');
    } else if ((await runScript('kafka', ['--records', sizes.records, '--sync', sync])) !== 0) {
      process.exitCode = 1;
    }
  }
  if (suites.includes('cluster')) {
    await quiet();
    say('--- cluster: one node, --workers 2 and two nodes on Redis: burst, p99, acknowledged publishes/s, connections held ---');
    if ((await runScript('cluster', quick ? ['--quick'] : [])) !== 0) process.exitCode = 1;
  }
}

function brokerAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(1_000);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(false));
  });
}

main().catch((err: unknown) => {
  console.error(`bench: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
