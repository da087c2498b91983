import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { IpcBroker, isHeadMoved, type HeadMoved } from '../../src/brokers/ipc-broker.js';
import { ClosedError } from '../../src/core/errors.js';
import type { StoredEvent } from '../../src/core/event.js';
import { Hub } from '../../src/core/hub.js';
import { Subscription, type DisconnectReason, type ResetReason } from '../../src/core/subscription.js';
import { SqliteEventStore } from '../../src/stores/sqlite-event-store.js';
import { waitFor } from '../helpers/herald.js';

/**
 * IpcBroker between "workers" in one process: each has its own handle on one SQLite file (as
 * the processes of `herald --workers N` do) and a relay stands in for the cluster primary.
 */

class Recorder extends Subscription {
  readonly seen: number[] = [];
  readonly resets: ResetReason[] = [];
  readonly maxBacklogBytes = 1_000_000;
  protected write(events: readonly StoredEvent[]): void {
    for (const e of events) this.seen.push(e.seq);
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

/** Workers sharing one file, and a primary that relays wake-ups unless `drop` says otherwise. */
function cluster(t: { after(fn: () => Promise<void>): void }, opts: { drop?: boolean; probeIntervalMs?: number } = {}) {
  const file = join(mkdtempSync(join(tmpdir(), 'herald-ipc-')), 'herald.db');
  const listeners: ((m: unknown) => void)[] = [];
  const relayed: HeadMoved[] = [];
  const closers: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of closers.reverse()) await c();
  });
  return {
    relayed,
    worker() {
      const store = new SqliteEventStore({ file, synchronous: 'normal' });
      const index = listeners.length;
      listeners.push(() => {});
      const broker = new IpcBroker({
        log: store,
        probeIntervalMs: opts.probeIntervalMs,
        send: (m) => {
          relayed.push(m);
          // The primary relays to every other worker, on a later turn of the event loop.
          if (!opts.drop) setImmediate(() => listeners.forEach((l, i) => i !== index && l(m)));
          return Promise.resolve();
        },
        listen: (l) => {
          listeners[index] = l;
          return () => (listeners[index] = () => {});
        },
      });
      const hub = new Hub({ store, broker });
      closers.push(() => store.close(), () => broker.close(), () => hub.close());
      return hub;
    },
  };
}

const ev = (i: number) => ({ channel: `c.${i % 2}`, type: 'message', data: String(i) });
const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

test('events appended by any worker reach the subscribers of every worker, in log order, each once', async (t) => {
  const c = cluster(t);
  const workers = [c.worker(), c.worker(), c.worker()];
  const subs = workers.map(() => new Recorder(['>']));
  for (const [i, w] of workers.entries()) await w.subscribe(subs[i]!);
  for (let i = 1; i <= 30; i++) await workers[i % 3]!.publish([ev(i)]);
  for (const s of subs) await waitFor(() => s.seen.length >= 30, 5_000, '30 events');
  for (const s of subs) assert.deepEqual(s.seen, oneTo(30));
  assert.ok(c.relayed.every(isHeadMoved));
});

test('with every wake-up lost, the probe of the log head still hands each event on, in order', async (t) => {
  const c = cluster(t, { drop: true, probeIntervalMs: 20 });
  const [a, b] = [c.worker(), c.worker()];
  const sub = new Recorder(['>']);
  await b.subscribe(sub);
  for (let i = 1; i <= 10; i++) await a.publish([ev(i), ev(i + 100)]);
  await waitFor(() => sub.seen.length >= 20, 5_000, 'the probe to catch up');
  assert.deepEqual(sub.seen, oneTo(20));
});

test('publish after close rejects with ClosedError; close is idempotent', async (t) => {
  const store = new SqliteEventStore({ file: ':memory:' });
  t.after(() => store.close());
  const broker = new IpcBroker({ log: store, send: () => Promise.resolve(), listen: () => () => {} });
  await broker.close();
  await broker.close();
  await assert.rejects(broker.publish([]), ClosedError);
});
