import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryBroker } from '../brokers/memory-broker.js';
import { MemoryEventStore } from '../stores/memory-event-store.js';
import type { EventInput, StoredEvent } from './event.js';
import type { EventStore, ReadPage } from './event-store.js';
import { Hub } from './hub.js';
import { WRITE_SLICE_SUBSCRIBERS } from './limits.js';
import { Subscription, type DisconnectReason, type ResetReason } from './subscription.js';

class Recorder extends Subscription {
  readonly seen: string[] = [];
  readonly resets: { reason: ResetReason; head: string }[] = [];
  readonly writes: number[] = [];
  disconnected: DisconnectReason | undefined;
  backlog = 0;
  maxBacklogBytes = 1_000_000;
  protected write(events: readonly StoredEvent[]): void {
    this.writes.push(events.length);
    for (const e of events) this.seen.push(String(e.seq));
  }
  protected writeReset(reason: ResetReason, head: string): void {
    this.resets.push({ reason, head });
  }
  backlogBytes(): number {
    return this.backlog;
  }
  drained(): Promise<void> {
    return Promise.resolve();
  }
  protected disconnect(reason: DisconnectReason): void {
    this.disconnected = reason;
  }
}

/** A memory store whose reads wait for a gate: lets a test publish while a replay is half-way. */
class GatedStore extends MemoryEventStore {
  gate: Promise<void> | undefined;
  override async readPage(patterns: readonly string[], after: number, limit: number): Promise<ReadPage> {
    const page = await super.readPage(patterns, after, limit);
    if (this.gate) await this.gate;
    return page;
  }
}

const ev = (channel: string, data: unknown): EventInput => ({ channel, type: 'message', data: JSON.stringify(data) });
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => String(a + i));

test('an event is in the log before the publish resolves and before a subscriber sees it', async () => {
  const store = new MemoryEventStore();
  const hub = new Hub({ store, broker: new MemoryBroker() });
  let storedWhenSeen: number | undefined;
  class Checker extends Recorder {
    protected override write(events: readonly StoredEvent[]): void {
      void store.read(['a'], 0, 10).then((r) => (storedWhenSeen = r.length));
      super.write(events);
    }
  }
  const sub = new Checker(['a']);
  await hub.subscribe(sub);
  const [r] = await hub.publish([ev('a', 1)]);
  assert.equal((await store.read(['a'], 0, 10))[0]!.id, r!.event.id);
  assert.deepEqual(sub.seen, [String(r!.event.seq)]);
  await new Promise((res) => setImmediate(res));
  assert.equal(storedWhenSeen, 1);
});

test('resume closes the seam: events published during the replay arrive once, in order', async () => {
  const store = new GatedStore();
  const hub = new Hub({ store, broker: new MemoryBroker() });
  for (let i = 1; i <= 10; i++) await hub.publish([ev(i % 2 ? 'a' : 'b', i)]);
  let open!: () => void;
  store.gate = new Promise((r) => (open = r));
  const sub = new Recorder(['a', 'b']);
  const subscribed = hub.subscribe(sub, { seq: 4 });
  // While the replay read is held, more events are committed and dispatched.
  for (let i = 11; i <= 15; i++) await hub.publish([ev(i % 2 ? 'a' : 'b', i)]);
  open();
  store.gate = undefined;
  await subscribed;
  for (let i = 16; i <= 18; i++) await hub.publish([ev('a', i)]);
  assert.deepEqual(sub.seen, range(5, 18));
});

test('an event published during the replay that matches two patterns of one subscription arrives once', async () => {
  const store = new GatedStore();
  const hub = new Hub({ store, broker: new MemoryBroker() });
  let open!: () => void;
  store.gate = new Promise((r) => (open = r));
  const sub = new Recorder(['c.x', 'c.>']);
  const subscribed = hub.subscribe(sub, { seq: 0 });
  // The replay has read an empty log; the event is committed and dispatched (once per matching
  // pattern) while the subscription is still replaying.
  await hub.publish([ev('c.x', 1)]);
  open();
  store.gate = undefined;
  await subscribed;
  assert.deepEqual(sub.seen, ['1']);
});

test('a subscription without a position starts live from now', async () => {
  const hub = new Hub({ store: new MemoryEventStore(), broker: new MemoryBroker() });
  await hub.publish([ev('a', 1)]);
  const sub = new Recorder(['a']);
  await hub.subscribe(sub);
  await hub.publish([ev('a', 2)]);
  assert.deepEqual(sub.seen, ['2']);
});

test('a position older than retention, or unknown to the log, gets a reset, then live events', async () => {
  const store = new MemoryEventStore();
  const hub = new Hub({ store, broker: new MemoryBroker() });
  for (let i = 1; i <= 5; i++) await hub.publish([ev('a', i)]);
  await store.prune({ maxAgeMs: 0, maxEvents: 2, idempotencyTtlMs: 0 }, Date.now());
  const pruned = new Recorder(['a']);
  const { epoch } = await store.head();
  await hub.subscribe(pruned, { seq: 1 });
  assert.deepEqual(pruned.resets, [{ reason: 'position_pruned', head: `${epoch}-5` }]);
  const future = new Recorder(['a']);
  await hub.subscribe(future, { seq: 99, epoch });
  assert.deepEqual(future.resets, [{ reason: 'position_unknown', head: `${epoch}-5` }]);
  await hub.publish([ev('a', 6)]);
  assert.deepEqual(pruned.seen, ['6']);
  assert.deepEqual(future.seen, ['6']);
  const current = new Recorder(['a']);
  await hub.subscribe(current, { seq: 3, epoch });
  assert.deepEqual(current.resets, []);
  assert.deepEqual(current.seen, ['4', '5', '6']);
});

test('a position from another log gets an epoch_changed reset, below the head as above it', async () => {
  const store = new MemoryEventStore();
  const hub = new Hub({ store, broker: new MemoryBroker() });
  for (let i = 1; i <= 5; i++) await hub.publish([ev('a', i)]);
  const { epoch } = await store.head();
  const other = epoch === 'zzzzzz' ? 'yyyyyy' : 'zzzzzz';
  const below = new Recorder(['a']);
  await hub.subscribe(below, { seq: 2, epoch: other });
  const above = new Recorder(['a']);
  await hub.subscribe(above, { seq: 9, epoch: other });
  for (const sub of [below, above]) {
    assert.deepEqual(sub.resets, [{ reason: 'epoch_changed', head: `${epoch}-5` }]);
    assert.deepEqual(sub.seen, []);
  }
  await hub.publish([ev('a', 6)]);
  assert.deepEqual(below.seen, ['6']);
  await assert.rejects(hub.history(['a'], { seq: 2, epoch: other }, 10, {}), { code: 'EPOCH_CHANGED' });
  assert.equal((await hub.history(['a'], { seq: 2, epoch }, 10, {})).length, 4);
});

test('publishes of one tick are committed together and reach a subscriber in one write', async () => {
  const hub = new Hub({ store: new MemoryEventStore(), broker: new MemoryBroker() });
  const sub = new Recorder(['a.*']);
  await hub.subscribe(sub);
  await Promise.all(Array.from({ length: 50 }, (_, i) => hub.publish([ev(`a.${i % 3}`, i)])));
  assert.deepEqual(sub.seen, range(1, 50));
  assert.deepEqual(sub.writes, [50]);
});

test('an event that comes during a write round joins the writes the round has not reached yet', async () => {
  const hub = new Hub({ store: new MemoryEventStore(), broker: new MemoryBroker() });
  const subs = Array.from({ length: WRITE_SLICE_SUBSCRIBERS * 3 }, () => new Recorder(['a']));
  for (const s of subs) await hub.subscribe(s);
  const [a] = await hub.publish([ev('a', 1)]);
  // The round for the first event has written its first slice; the second event is committed
  // while the rest of the round is still to be written.
  assert.deepEqual(subs[0]!.writes, [1]);
  assert.deepEqual(subs[subs.length - 1]!.writes, []);
  const [b] = await hub.publish([ev('a', 2)]);
  await new Promise((r) => setTimeout(r, 20));
  const ids = [String(a!.event.seq), String(b!.event.seq)];
  for (const s of subs) assert.deepEqual(s.seen, ids);
  // Reached before the second event: two writes. Not yet reached: both events in one write.
  assert.deepEqual(subs[0]!.writes, [1, 1]);
  assert.deepEqual(subs[subs.length - 1]!.writes, [2]);
});

test('an event matching two patterns of one subscription is delivered once', async () => {
  const hub = new Hub({ store: new MemoryEventStore(), broker: new MemoryBroker() });
  const sub = new Recorder(['orders.*', 'orders.>', 'orders.eu']);
  await hub.subscribe(sub);
  await hub.publish([ev('orders.eu', 1)]);
  assert.deepEqual(sub.seen, ['1']);
});

test('a subscriber past its backlog bound is cut off as slow and leaves the index', async () => {
  const hub = new Hub({ store: new MemoryEventStore(), broker: new MemoryBroker() });
  const slow = new Recorder(['a']);
  const fast = new Recorder(['a']);
  await hub.subscribe(slow);
  await hub.subscribe(fast);
  await hub.publish([ev('a', 1)]);
  // Its bytes are still unsent when the next event comes: that is what makes it slow.
  slow.backlog = 2_000_000;
  await hub.publish([ev('a', 2)]);
  assert.equal(slow.disconnected, 'slow');
  assert.deepEqual(slow.seen, ['1']);
  assert.deepEqual(fast.seen, ['1', '2']);
  assert.equal(hub.subscriptionCount, 1);
});

test('publishes after close are refused; close waits for those in flight', async () => {
  const store = new MemoryEventStore();
  const hub = new Hub({ store, broker: new MemoryBroker() });
  const pending = hub.publish([ev('a', 1)]);
  await hub.close();
  assert.equal((await pending)[0]!.event.seq, 1);
  await assert.rejects(hub.publish([ev('a', 2)]), /closed/);
});

test('a publish made while the hub still reads the head at start is dispatched, not taken for a duplicate', async () => {
  // The hub's first head read (at construction) answers late; later ones at once. A subscriber
  // goes live from 0 meanwhile, then an append commits before the hub knows where the log was.
  class SlowFirstHead extends MemoryEventStore {
    #calls = 0;
    override async head() {
      if (this.#calls++ === 0) await new Promise((r) => setTimeout(r, 20));
      return super.head();
    }
  }
  const hub = new Hub({ store: new SlowFirstHead(), broker: new MemoryBroker() });
  const sub = new Recorder(['a']);
  await hub.subscribe(sub);
  const [r] = await hub.publish([ev('a', 1)]);
  assert.equal(r!.event.seq, 1);
  // Wait for the delivery (bounded): without it the event is lost for good, not late.
  for (let i = 0; i < 100 && sub.seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(sub.seen, ['1']);
});

/**
 * A shared log that can be lost and rebuilt under a running node (a Redis flushed, a replica
 * promoted without the latest writes): `replace()` swaps in a new log with a new epoch, as the
 * backend would see it on its next call.
 */
function replaceableLog(): { store: EventStore; replace(): void } {
  let current = new MemoryEventStore();
  const store = new Proxy({} as EventStore, {
    get(_target, prop) {
      const value = Reflect.get(current, prop, current) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(current) : value;
    },
  });
  return { store, replace: () => (current = new MemoryEventStore()) };
}

test('a log replaced under a live node: every subscriber gets the epoch_changed reset, then the new log from its first event', async () => {
  const log = replaceableLog();
  const broker = new MemoryBroker();
  const hub = new Hub({ store: log.store, broker });
  const live = new Recorder(['a']);
  await hub.subscribe(live);
  for (let i = 1; i <= 3; i++) await hub.publish([ev('a', i)]);
  const resumed = new Recorder(['>']);
  await hub.subscribe(resumed, { seq: 1 });
  assert.deepEqual(live.seen, range(1, 3));
  assert.deepEqual(resumed.seen, range(2, 3));
  const oldEpoch = await hub.epoch();

  log.replace();
  const newEpoch = await hub.epoch();
  assert.notEqual(newEpoch, oldEpoch);
  await hub.publish([ev('a', 'n1')]);
  await hub.publish([ev('b', 'n2')]);
  await waitUntil(() => resumed.seen.length === 4);
  for (const sub of [live, resumed]) {
    assert.deepEqual(sub.resets, [{ reason: 'epoch_changed', head: `${newEpoch}-0` }]);
  }
  // seq 1 and 2 of the new log are new events, not the old 1 and 2 (which they already had).
  assert.deepEqual(live.seen, [...range(1, 3), '1']);
  assert.deepEqual(resumed.seen, ['2', '3', '1', '2']);
  await hub.close();
});

test('a late notification from the replaced log is dropped, not taken for a new log', async () => {
  const log = replaceableLog();
  const broker = new MemoryBroker();
  const hub = new Hub({ store: log.store, broker });
  const sub = new Recorder(['a']);
  await hub.subscribe(sub);
  const [old] = await hub.publish([ev('a', 1)]);
  log.replace();
  await hub.publish([ev('a', 2)]);
  await waitUntil(() => sub.seen.length === 2);
  await broker.publish([old!.event]); // the old log's event, heard again
  await hub.publish([ev('a', 3)]);
  await waitUntil(() => sub.seen.length === 3);
  assert.deepEqual(sub.seen, ['1', '1', '2']);
  assert.equal(sub.resets.length, 1);
  await hub.close();
});

async function waitUntil(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !ok(); i++) await new Promise((r) => setTimeout(r, 2));
  assert.ok(ok(), 'condition not reached');
}
