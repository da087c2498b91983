import { Admin, Producer } from '@platformatic/kafka';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ChildRpc } from './bench-ipc.js';
import { LatencyHistogram, now, payload, type WorkerStats } from './bench-protocol.js';
import { ROOT } from './bench-targets.js';

const USAGE = `node dist/bench/kafka.js [options]     (after npm run build)

Kafka in, end to end, against the broker of scripts/services/kafka.sh:
  1. ingest: records pre-produced to a topic, then Herald started: records/s into the log;
  2. fan-out: SSE subscribers (raw sockets in child processes) on the channel a second topic maps
     to; records produced at a fixed rate, then as fast as the producer goes: records/s and
     deliveries/s out, and produce -> receipt latency p50/p99 (stamped in the record value).

  --brokers LIST       bootstrap brokers (default: $HERALD_TEST_KAFKA_BROKERS or 127.0.0.1:19092)
  --records N          ingest records (default 100000)
  --subscribers N      SSE subscribers (default 1000)
  --rate N             records/s in the steady window (default 200)
  --seconds N          length of the steady window (default 10)
  --burst N            records in the burst window (default 2000)
  --workers N          subscriber processes (default 2)
  --store sqlite|memory  Herald's log (default sqlite, the embedded default)
  --sync full|normal   SQLite synchronous (default full: an fsync per commit)
  --help`;

/** Records per produce request while pre-producing and bursting. */
const PRODUCE_CHUNK = 500;
/** Partitions of each benchmark topic. */
const PARTITIONS = 6;
/** No new delivery for this long after the last record was produced: the rest are lost. */
const STALL_MS = 5_000;
/** How often progress is polled. */
const POLL_MS = 20;
/** Longest a probe round may take before it is produced again. */
const PROBE_RETRY_MS = 2_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface HeraldProcess {
  child: ChildProcess;
  url: string;
  dataDir: string;
}

async function startHerald(config: unknown): Promise<HeraldProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-bench-kafka-'));
  const file = join(dataDir, 'config.json');
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), '--config', file], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', HERALD_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`herald exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.includes('herald listening')) return;
      resolve((JSON.parse(line) as { url: string }).url);
    });
  });
  return { child, url, dataDir };
}

async function stopHerald(h: HeraldProcess): Promise<void> {
  const exited = new Promise((r) => h.child.once('exit', r));
  h.child.kill('SIGTERM');
  await exited;
  rmSync(h.dataDir, { recursive: true, force: true });
}

async function metric(url: string, name: string, label: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name + '{') && line.includes(label)) sum += Number(line.split(' ').pop());
  return sum;
}

function value(n: number): Buffer {
  return Buffer.from(payload(now(), n));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      brokers: { type: 'string', default: process.env.HERALD_TEST_KAFKA_BROKERS || '127.0.0.1:19092' },
      records: { type: 'string', default: '100000' },
      subscribers: { type: 'string', default: '1000' },
      rate: { type: 'string', default: '200' },
      seconds: { type: 'string', default: '10' },
      burst: { type: 'string', default: '2000' },
      workers: { type: 'string', default: '2' },
      store: { type: 'string', default: 'sqlite' },
      sync: { type: 'string', default: 'full' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return console.log(USAGE);
  const brokers = values.brokers.split(',');
  const records = Number(values.records);
  const subscribers = Number(values.subscribers);
  const rate = Number(values.rate);
  const steady = rate * Number(values.seconds);
  const burst = Number(values.burst);

  const admin = new Admin({ clientId: 'herald-bench', bootstrapBrokers: brokers, retries: 1 });
  try {
    await admin.metadata({ topics: [] });
  } catch {
    console.error(`no Kafka at ${brokers.join(',')}: run \`bash scripts/services/kafka.sh start\` first`);
    process.exit(1);
  }
  const stamp = Date.now().toString(36);
  const ingestTopic = `bench-ingest-${stamp}`;
  const fanoutTopic = `bench-fanout-${stamp}`;
  await admin.createTopics({ topics: [ingestTopic, fanoutTopic], partitions: PARTITIONS, replicas: 1 });
  const producer = new Producer({ clientId: 'herald-bench', bootstrapBrokers: brokers });
  const send = (topic: string, from: number, count: number) =>
    producer.send({
      acks: -1,
      messages: Array.from({ length: count }, (_, i) => ({ topic, key: Buffer.from(`k${(from + i) % 64}`), value: value(from + i) })),
    });

  // 1. Ingest: the topic is full before Herald starts; time from its first to its last stored record.
  console.log(`producing ${records} records to ${ingestTopic} ...`);
  for (let i = 0; i < records; i += PRODUCE_CHUNK) await send(ingestTopic, i, Math.min(PRODUCE_CHUNK, records - i));
  const herald = await startHerald({
    log: { level: 'info' },
    backend: values.store === 'memory' ? { type: 'memory' } : { type: 'sqlite', synchronous: values.sync },
    kafka: {
      brokers,
      groupId: `herald-bench-${stamp}`,
      fetchMaxWaitMs: 50,
      topics: [
        { topic: ingestTopic, channel: 'ingest', fromBeginning: true },
        { topic: fanoutTopic, channel: 'bench', fromBeginning: true },
      ],
    },
  });
  let t0 = 0;
  let c0 = 0;
  for (;;) {
    const c = await metric(herald.url, 'herald_kafka_records_total', `topic="${ingestTopic}"`);
    if (c > 0 && t0 === 0) [t0, c0] = [now(), c];
    if (c >= records) break;
    await sleep(POLL_MS);
  }
  const ingestPerSec = ((records - c0) / (now() - t0)) * 1000;

  // 2. Fan-out: subscribers in child processes; every one proven live by a probe record first.
  const workers = Array.from({ length: Number(values.workers) }, (_, i) => new ChildRpc(join(ROOT, 'dist/bench/client-worker.js'), `worker ${i}`));
  const streamUrl = `${herald.url}/v1/stream?channel=bench`;
  await Promise.all(
    workers.map((w, i) =>
      w.call('connect', { transport: 'sse', url: streamUrl, channel: 'bench', count: Math.floor(subscribers / workers.length) + (i < subscribers % workers.length ? 1 : 0) }),
    ),
  );
  for (let probe = 1; ; probe++) {
    await producer.send({ acks: -1, messages: [{ topic: fanoutTopic, value: value(-probe) }] });
    const until = Date.now() + PROBE_RETRY_MS;
    let live = false;
    while (!live && Date.now() < until) {
      const r = await Promise.all(workers.map((w) => w.call<{ seen: number; open: number }>('probe', { id: probe })));
      live = r.reduce((a, x) => a + x.seen, 0) >= subscribers;
      if (!live) await sleep(POLL_MS);
    }
    if (live) break;
  }

  let nextN = 0;
  const windowRun = async (name: string, count: number, produce: (start: number) => Promise<number>) => {
    const start = nextN;
    nextN += count;
    const open = (await Promise.all(workers.map((w) => w.call<{ open: number }>('begin', { start, count })))).reduce((a, b) => a + b.open, 0);
    const firstSend = now();
    const lastSend = await produce(start);
    const expected = count * open;
    let last = -1;
    let lastChange = Date.now();
    for (;;) {
      const got = (await Promise.all(workers.map((w) => w.call<{ received: number }>('progress')))).reduce((a, x) => a + x.received, 0);
      if (got >= expected) break;
      if (got !== last) [last, lastChange] = [got, Date.now()];
      else if (Date.now() - lastChange > STALL_MS) break;
      await sleep(POLL_MS);
    }
    const stats = await Promise.all(workers.map((w) => w.call<WorkerStats>('stats')));
    const h = new LatencyHistogram();
    let received = 0;
    let lastAt = 0;
    for (const s of stats) {
      h.merge(s.histogram);
      received += s.received;
      lastAt = Math.max(lastAt, s.lastAt);
    }
    const seconds = (lastAt - firstSend) / 1000;
    return {
      window: name,
      subscribers: open,
      records: count,
      'produce records/s': Math.round(count / ((lastSend - firstSend) / 1000)),
      'records/s out': Math.round(count / seconds),
      'deliveries/s': Math.round(received / seconds),
      lost: expected - received,
      'p50 ms': Number(h.quantile(0.5).toFixed(2)),
      'p99 ms': Number(h.quantile(0.99).toFixed(2)),
      'max ms': Number(h.max.toFixed(2)),
    };
  };

  const rows = [];
  rows.push(
    await windowRun(`steady ${rate}/s`, steady, async (start) => {
      // One record per request at a fixed rate, each stamped when it is sent.
      const begin = now();
      for (let i = 0; i < steady; i++) {
        const due = begin + (i * 1000) / rate;
        const wait = due - now();
        if (wait > 1) await sleep(wait);
        await producer.send({ acks: 1, messages: [{ topic: fanoutTopic, key: Buffer.from(`k${i % 64}`), value: value(start + i) }] });
      }
      return now();
    }),
  );
  rows.push(
    await windowRun('burst', burst, async (start) => {
      for (let i = 0; i < burst; i += PRODUCE_CHUNK) await send(fanoutTopic, start + i, Math.min(PRODUCE_CHUNK, burst - i));
      return now();
    }),
  );

  const log = values.store === 'memory' ? 'memory log' : `SQLite log, synchronous ${values.sync}`;
  console.log(`\nKafka -> log (ingest, ${records} records of ~100 B, ${PARTITIONS} partitions, ${log}): ${Math.round(ingestPerSec)} records/s`);
  console.log(`Kafka -> log -> ${subscribers} SSE subscribers (latency: produce -> receipt):`);
  console.table(rows);

  await Promise.all(workers.map((w) => w.close()));
  await stopHerald(herald);
  await producer.close();
  await admin.deleteTopics({ topics: [ingestTopic, fanoutTopic] }).catch(() => undefined);
  await admin.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
