import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { pbkdf2 } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { MemoryBroker } from '../../src/brokers/memory-broker.js';
import { toEventInput, type StoredEvent } from '../../src/core/event.js';
import { Hub } from '../../src/core/hub.js';
import { parsePosition } from '../../src/core/position.js';
import { Subscription, type DisconnectReason, type ResetReason } from '../../src/core/subscription.js';
import { SqliteEventStore } from '../../src/stores/sqlite-event-store.js';

/** Workers of `herald --workers N` open one SQLite file each: these are two such handles. */
function twoHandles(t: { after(fn: () => Promise<void>): void }, synchronous: 'full' | 'normal') {
  const file = join(mkdtempSync(join(tmpdir(), 'herald-shared-')), 'herald.db');
  const a = new SqliteEventStore({ file, synchronous });
  const b = new SqliteEventStore({ file, synchronous });
  t.after(async () => {
    await a.close();
    await b.close();
  });
  return { a, b, file };
}

class Recorder extends Subscription {
  readonly seen: string[] = [];
  readonly resets: ResetReason[] = [];
  maxBacklogBytes = 1_000_000;
  protected write(events: readonly StoredEvent[]): void {
    for (const e of events) this.seen.push(e.id);
  }
  protected writeReset(reason: ResetReason): void {
    this.resets.push(reason);
  }
  backlogBytes(): number {
    return 0;
  }
  drained(): Promise<void> {
    return Promise.resolve();
  }
  protected disconnect(_reason: DisconnectReason): void {}
}

const input = (data: string) => toEventInput({ channel: 'orders', data });

/** Jobs that keep libuv's thread pool (4 threads unless UV_THREADPOOL_SIZE says more) busy. */
const THREAD_POOL_JOBS = 4 * Math.max(4, Number(process.env.UV_THREADPOOL_SIZE ?? 4));
/** PBKDF2 iterations of each job (200,000 was too short on Node 24: its append finished first). */
const BUSY_ITERATIONS = 1_000_000;

/** Appends one event to `file` from a process of its own (synchronous full); resolves to its seq. */
async function appendInAnotherProcess(file: string, data: string): Promise<number> {
  const store = new URL('../../src/stores/sqlite-event-store.js', import.meta.url).href;
  const script = `
    const { SqliteEventStore } = await import(${JSON.stringify(store)});
    const s = new SqliteEventStore({ file: ${JSON.stringify(file)}, backgroundCheckpoints: false });
    const [r] = await s.append([{ channel: 'orders', type: 'message', data: ${JSON.stringify(JSON.stringify(data))} }]);
    process.stdout.write(String(r.event.seq));
    await s.close();`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
  return Number(stdout);
}

for (const synchronous of ['full', 'normal'] as const) {
  test(`synchronous ${synchronous}: an id appended through one handle resumes through another without a reset`, async (t) => {
    const { a, b } = twoHandles(t, synchronous);
    const hub = new Hub({ store: b, broker: new MemoryBroker() });
    t.after(() => hub.close());
    await b.head(); // b has read the file before a appends: nothing it keeps may go stale
    const [one, two, three] = await a.append([input('one'), input('two'), input('three')]);
    assert.equal((await b.head()).lastSeq, three!.event.seq);
    const sub = new Recorder(['orders']);
    await hub.subscribe(sub, parsePosition(one!.event.id));
    assert.deepEqual(sub.resets, []);
    assert.deepEqual(sub.seen, [two!.event.id, three!.event.id]);
    const atHead = new Recorder(['orders']);
    await hub.subscribe(atHead, parsePosition(three!.event.id));
    assert.deepEqual(atHead.resets, []);
  });
}

test('synchronous full: an id another process acknowledged is within the head while this one still fsyncs its own append', async (t) => {
  const { b, file } = twoHandles(t, 'full');
  // This process's fsyncs run on libuv's thread pool: keep it busy so b's own append stays
  // committed but unresolved while another process appends after it and acknowledges.
  // Long enough (about a second of pool time here) to outlast starting another Node process,
  // which takes longer on some versions than on others.
  const busy = Array.from({ length: THREAD_POOL_JOBS }, () => promisify(pbkdf2)('x', 'y', BUSY_ITERATIONS, 32, 'sha256'));
  let ownDone = false;
  const own = b.append([input('b')]).then(() => (ownDone = true));
  const theirs = await appendInAnotherProcess(file, 'a');
  assert.equal(ownDone, false, 'the test needs b\'s append still in flight');
  const head = await b.head();
  assert.ok(head.lastSeq >= theirs, `head ${head.lastSeq} is below ${theirs}: a resume from it would reset`);
  assert.deepEqual((await b.read(['orders'], 0, 10)).map((e) => e.seq), [theirs - 1, theirs]);
  await own;
  await Promise.all(busy);
});

test('seqs interleave without a clash when two handles append in turn, and both see one head', async (t) => {
  const { a, b } = twoHandles(t, 'normal');
  const seqs: number[] = [];
  for (let i = 0; i < 20; i++) {
    const [r] = await (i % 2 === 0 ? a : b).append([input(String(i))]);
    seqs.push(r!.event.seq);
  }
  assert.deepEqual(seqs, Array.from({ length: 20 }, (_, i) => seqs[0]! + i));
  assert.equal((await a.head()).lastSeq, seqs[19]);
  assert.equal((await b.head()).lastSeq, seqs[19]);
  assert.deepEqual((await a.read(['orders'], 0, 100)).map((e) => e.seq), seqs);
});

test('a prune through one handle raises the watermark the other reports', async (t) => {
  const { a, b } = twoHandles(t, 'normal');
  await a.append([input('1'), input('2'), input('3')]);
  await b.head();
  await a.prune({ maxAgeMs: 0, maxEvents: 1, idempotencyTtlMs: 0 }, Date.now());
  assert.ok((await b.head()).prunedThrough >= 2);
});

/** Rounds of two handles opening one new file at the same moment (a race: most rounds lose it). */
const OPEN_RACE_ROUNDS = 20;

test('two handles (workers, consumers) opening one new file at the same moment both open it (no SQLITE_BUSY while the other switches it to WAL)', async () => {
  const store = new URL('../../src/stores/sqlite-event-store.js', import.meta.url).href;
  const failures: string[] = [];
  for (let round = 0; round < OPEN_RACE_ROUNDS; round++) {
    const file = join(mkdtempSync(join(tmpdir(), 'herald-open-race-')), 'herald.db');
    // Each thread loads the module first, then waits for the same moment to open the file.
    const at = Date.now() + 250;
    const source = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.store).then(({ SqliteEventStore }) => {
        while (Date.now() < workerData.at) {}
        try {
          const s = new SqliteEventStore({ file: workerData.file, synchronous: 'normal', backgroundCheckpoints: false });
          s.close().then(() => parentPort.postMessage('ok'));
        } catch (err) {
          parentPort.postMessage(String(err.code) + ': ' + err.message);
        }
      });`;
    const results = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<string>((resolve, reject) => {
            const w = new Worker(source, { eval: true, workerData: { store, file, at } });
            w.once('message', (m: string) => void w.terminate().then(() => resolve(m)));
            w.once('error', reject);
          }),
      ),
    );
    failures.push(...results.filter((r) => r !== 'ok'));
  }
  assert.deepEqual(failures, []);
});
