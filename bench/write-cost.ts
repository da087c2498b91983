import { createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ChildRpc } from './bench-ipc.js';

/**
 * What one loopback TCP message costs on this machine, whatever the server: a bare `node:net`
 * writer (no HTTP, no framing, one `socket.write` of a ready buffer per connection per round)
 * and reader processes as lean as the fan-out benchmark's subscribers. Prints CPU time per write
 * (writer) and per read (readers), each split into user and system time. System time is the
 * kernel's share (TCP on both ends of loopback, wakeups), which no server written in any
 * language avoids; from it follows how many cores a scenario needs at the least.
 *
 * `npm run build && node dist/bench/write-cost.js [--connections 1000,10000] [--rounds 20]`
 */

const USAGE = `Usage: node dist/bench/write-cost.js [options]
  --connections LIST   connection counts to measure (default 1000,10000)
  --rounds N           rounds per count: every connection written once a round (default 20)
  --interval MS        pause between rounds, so readers drain and each write is one read (default 100)
  --bytes N            bytes per write (default 150: a ~100-byte event with its SSE framing)
  --readers N          reader processes (default 2)`;

/** Rounds written before the measured ones, so both sides run warm code. */
const WARM_UP_ROUNDS = 3;

interface Counters {
  reads: number;
  bytes: number;
  user: number;
  system: number;
}

export interface WriteCost {
  connections: number;
  writes: number;
  /** µs of CPU per write (writer) and per read (readers), user and system. */
  writeUser: number;
  writeSystem: number;
  reads: number;
  readUser: number;
  readSystem: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function measure(connections: number, rounds: number, intervalMs: number, bytes: number, readerCount: number): Promise<WriteCost> {
  const accepted: Socket[] = [];
  const server = createServer({ noDelay: true }, (s) => {
    s.on('error', () => undefined);
    accepted.push(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const readers = Array.from({ length: readerCount }, () => new ChildRpc(fileURLToPath(new URL('./write-cost-reader.js', import.meta.url)), 'reader'));
  try {
    const per = Math.ceil(connections / readerCount);
    await Promise.all(readers.map((r, i) => r.call('connect', { port, count: Math.min(per, connections - i * per) })));
    while (accepted.length < connections) await sleep(10);
    const payload = Buffer.alloc(bytes, 'x');
    const round = () => {
      for (const s of accepted) s.write(payload);
    };
    for (let i = 0; i < WARM_UP_ROUNDS; i++) {
      round();
      await sleep(intervalMs);
    }
    const before = await Promise.all(readers.map((r) => r.call<Counters>('counters')));
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < rounds; i++) {
      round();
      await sleep(intervalMs);
    }
    const cpu = process.cpuUsage(cpu0);
    await sleep(intervalMs);
    const after = await Promise.all(readers.map((r) => r.call<Counters>('counters')));
    const sum = (k: keyof Counters) => after.reduce((a, c, i) => a + c[k] - before[i]![k], 0);
    const writes = connections * rounds;
    const reads = sum('reads');
    return {
      connections,
      writes,
      writeUser: cpu.user / writes,
      writeSystem: cpu.system / writes,
      reads,
      readUser: sum('user') / reads,
      readSystem: sum('system') / reads,
    };
  } finally {
    for (const s of accepted) s.destroy();
    await Promise.all(readers.map((r) => r.close()));
    await new Promise<void>((r) => server.close(() => r()));
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '1000,10000' },
      rounds: { type: 'string', default: '20' },
      interval: { type: 'string', default: '100' },
      bytes: { type: 'string', default: '150' },
      readers: { type: 'string', default: '2' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const num = (v: string, name: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} is a positive integer`);
    return n;
  };
  const counts = values.connections.split(',').map((c) => num(c, 'connections'));
  const rows: string[] = [
    '| Connections | Writes | Write: user µs | Write: system µs | Reads | Read: user µs | Read: system µs | CPU per message µs |',
    '|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const n of counts) {
    const c = await measure(n, num(values.rounds, 'rounds'), num(values.interval, 'interval'), num(values.bytes, 'bytes'), num(values.readers, 'readers'));
    const f = (x: number) => x.toFixed(2);
    const perMessage = c.writeUser + c.writeSystem + ((c.readUser + c.readSystem) * c.reads) / c.writes;
    rows.push(`| ${n.toLocaleString('en-US')} | ${c.writes.toLocaleString('en-US')} | ${f(c.writeUser)} | ${f(c.writeSystem)} | ${c.reads.toLocaleString('en-US')} | ${f(c.readUser)} | ${f(c.readSystem)} | ${f(perMessage)} |`);
    console.log(rows[rows.length - 1]);
  }
  console.log(`\n${rows.join('\n')}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
