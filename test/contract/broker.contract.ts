import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Broker } from '../../src/core/broker.js';
import { ClosedError } from '../../src/core/errors.js';
import type { EventInput, StoredEvent } from '../../src/core/event.js';
import type { EventStore } from '../../src/core/event-store.js';
import { Hub } from '../../src/core/hub.js';
import { Subscription, type DisconnectReason, type ResetReason } from '../../src/core/subscription.js';
import { MemoryEventStore } from '../../src/stores/memory-event-store.js';

/** One deployment: a log, and a broker per node. */
export interface BrokerDeployment {
  /** The log every node of the deployment shares. */
  readonly store: EventStore;
  /** The broker of one more node (the same object for an in-process broker). */
  node(): Promise<Broker> | Broker;
  close(): Promise<void>;
}

export interface BrokerFactory {
  /** A fresh deployment with an empty log. */
  create(): Promise<BrokerDeployment> | BrokerDeployment;
}

/** What the broker of a node does to the batches it hands over: see Misbehaving. */
type Fault = 'pass' | 'drop' | 'hold' | 'duplicate';

/**
 * Wraps a node's broker and mistreats the batches it hands to that node's handlers, the way a
 * broker across a network may: `drop` loses a batch, `hold` delivers it after the next one
 * (reorder), `duplicate` delivers it twice. Batch i gets `faults[i]` (then `pass`).
 */
class Misbehaving implements Broker {
  readonly #inner: Broker;
  readonly #faults: readonly Fault[];
  #n = 0;
  #held: (readonly StoredEvent[])[] = [];
  /** The highest seq the inner broker handed over, whatever was done to it. */
  #heard = 0;
  #hearing: { seq: number; resolve: () => void } | undefined;

  constructor(inner: Broker, faults: readonly Fault[]) {
    this.#inner = inner;
    this.#faults = faults;
  }

  publish(events: readonly StoredEvent[]): Promise<void> {
    return this.#inner.publish(events);
  }

  onEvents(handler: (events: readonly StoredEvent[]) => void): void {
    this.#inner.onEvents((events) => {
      this.#heard = Math.max(this.#heard, events[events.length - 1]?.seq ?? 0);
      if (this.#hearing && this.#heard >= this.#hearing.seq) this.#hearing.resolve();
      const fault = this.#faults[this.#n++] ?? 'pass';
      if (fault === 'drop') return;
      if (fault === 'hold') {
        this.#held.push(events);
        return;
      }
      handler(events);
      if (fault === 'duplicate') handler(events);
      const held = this.#held;
      this.#held = [];
      for (const h of held) handler(h);
    });
  }

  /**
   * Resolves once the inner broker handed over `seq` (at once for an in-process broker). A test
   * waits for it after each publish, so a broker across a network, which may join batches that
   * arrive close together, still hands over one batch per publish and each fault hits one.
   */
  heard(seq: number): Promise<void> {
    if (this.#heard >= seq) return Promise.resolve();
    return new Promise((resolve) => (this.#hearing = { seq, resolve }));
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

/** Resolves once `condition()` holds, checking every few milliseconds (brokers across a network deliver later). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** A node's broker that fails every publish while `down`. */
class Failing implements Broker {
  down = false;
  readonly #inner: Broker;

  constructor(inner: Broker) {
    this.#inner = inner;
  }

  publish(events: readonly StoredEvent[]): Promise<void> {
    return this.down ? Promise.reject(new Error('broker connection refused')) : this.#inner.publish(events);
  }

  onEvents(handler: (events: readonly StoredEvent[]) => void): void {
    this.#inner.onEvents(handler);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

/** A subscriber that records the seqs it is written, and lets a test wait for a count. */
class Recorder extends Subscription {
  readonly seen: number[] = [];
  readonly resets: ResetReason[] = [];
  readonly maxBacklogBytes = 1_000_000;
  #waiting: { n: number; resolve: () => void } | undefined;

  protected write(events: readonly StoredEvent[]): void {
    for (const e of events) this.seen.push(e.seq);
    if (this.#waiting && this.seen.length >= this.#waiting.n) this.#waiting.resolve();
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

  /** Resolves once `n` events were written (at once if they were). */
  seenCount(n: number): Promise<void> {
    if (this.seen.length >= n) return Promise.resolve();
    return new Promise((resolve) => (this.#waiting = { n, resolve }));
  }
}

const ev = (i: number): EventInput => ({ channel: `c.${i % 3}`, type: 'message', data: String(i) });
const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/**
 * The Broker specification (src/core/broker.ts), run against every implementation: what a
 * broker must do, and that the hub keeps events in log order, each once, when the broker does
 * not (a node that misses, reorders or repeats batches).
 */
export function brokerContract(name: string, factory: BrokerFactory): void {
  describe(`Broker contract: ${name}`, () => {
    test('hands each published batch to every handler, once, in order', async () => {
      const d = await factory.create();
      const a = await d.node();
      const b = await d.node();
      const got: number[][] = [[], []];
      a.onEvents((events) => got[0]!.push(...events.map((e) => e.seq)));
      b.onEvents((events) => got[1]!.push(...events.map((e) => e.seq)));
      for (let i = 1; i <= 5; i++) {
        const stored = await d.store.append([ev(2 * i - 1), ev(2 * i)]);
        await a.publish(stored.map((r) => r.event));
      }
      await until(() => got.every((seen) => seen.length >= 10));
      for (const seen of got) assert.deepEqual(seen, oneTo(10));
      await d.close();
    });

    test('events published on one node reach the subscribers of another, in log order', async () => {
      const d = await factory.create();
      const hubA = new Hub({ store: d.store, broker: await d.node() });
      const hubB = new Hub({ store: d.store, broker: await d.node() });
      const sub = new Recorder(['>']);
      await hubB.subscribe(sub);
      for (let i = 1; i <= 20; i++) await (i % 2 ? hubA : hubB).publish([ev(i)]);
      await sub.seenCount(20);
      assert.deepEqual(sub.seen, oneTo(20));
      await hubA.close();
      await hubB.close();
      await d.close();
    });

    for (const [what, faults] of [
      ['drops a batch', ['pass', 'drop', 'pass', 'pass']],
      ['reorders two batches', ['pass', 'hold', 'pass', 'pass']],
      ['duplicates a batch', ['pass', 'duplicate', 'pass', 'pass']],
      ['drops, reorders and duplicates', ['drop', 'hold', 'duplicate', 'drop', 'pass', 'hold', 'pass', 'duplicate', 'pass']],
    ] as const) {
      test(`a node whose broker ${what} still dispatches every event once, in order`, async () => {
        const d = await factory.create();
        const publisher = new Hub({ store: d.store, broker: await d.node() });
        const misbehaving = new Misbehaving(await d.node(), faults);
        const node = new Hub({ store: d.store, broker: misbehaving });
        const subs = [new Recorder(['>']), new Recorder(['c.1']), new Recorder(['c.1', 'c.2'])];
        for (const s of subs) await node.subscribe(s);
        // Batches of 1 to 3 events, so a hole can be one event or several.
        let n = 0;
        for (let batch = 0; batch < faults.length + 1; batch++) {
          const size = (batch % 3) + 1;
          await publisher.publish(Array.from({ length: size }, () => ev(++n)));
          await misbehaving.heard(n);
        }
        const want = (match: (i: number) => boolean) => oneTo(n).filter(match);
        await subs[0]!.seenCount(n);
        await subs[1]!.seenCount(want((i) => i % 3 === 1).length);
        await subs[2]!.seenCount(want((i) => i % 3 !== 0).length);
        assert.deepEqual(subs[0]!.seen, oneTo(n));
        assert.deepEqual(subs[1]!.seen, want((i) => i % 3 === 1));
        assert.deepEqual(subs[2]!.seen, want((i) => i % 3 !== 0));
        await publisher.close();
        await node.close();
        await d.close();
      });
    }

    test('a failed publish is acknowledged (stored), then the node refuses publishes until the broker is back', async () => {
      const d = await factory.create();
      const failing = new Failing(await d.node());
      const failures: boolean[] = [];
      let recovered!: () => void;
      const back = new Promise<void>((r) => (recovered = r));
      const hubA = new Hub({
        store: d.store,
        broker: failing,
        onBrokerFailure: (_err, first) => failures.push(first),
        onBrokerRecovered: () => recovered(),
      });
      const hubB = new Hub({ store: d.store, broker: await d.node() });
      const local = new Recorder(['>']);
      const remote = new Recorder(['>']);
      await hubA.subscribe(local);
      await hubB.subscribe(remote);
      await hubA.publish([ev(1)]);
      failing.down = true;
      // Stored, so acknowledged; the node's own subscribers get it without the broker.
      const [stored] = await hubA.publish([ev(2)]);
      assert.equal(stored!.event.seq, 2);
      assert.deepEqual(local.seen, [1, 2]);
      assert.equal(hubA.brokerCheck.ready, false);
      assert.equal(hubA.brokerCheck.state, 'unavailable');
      // Now refused before the append: nothing is stored that was answered with an error.
      await assert.rejects(hubA.publish([ev(3)]), { code: 'BROKER_UNAVAILABLE', status: 503 });
      assert.equal((await d.store.head()).lastSeq, 2);
      assert.deepEqual(failures, [true]);
      failing.down = false;
      await back;
      assert.equal(hubA.brokerCheck.ready, true);
      // The other node heard of event 2 when the broker was back.
      await remote.seenCount(2);
      await hubA.publish([ev(3)]);
      await remote.seenCount(3);
      assert.deepEqual(remote.seen, [1, 2, 3]);
      assert.deepEqual(local.seen, [1, 2, 3]);
      await hubA.close();
      await hubB.close();
      await d.close();
    });

    test('publish after close rejects with ClosedError; close is idempotent', async () => {
      const d = await factory.create();
      const b = await d.node();
      await b.close();
      await b.close();
      await assert.rejects(b.publish([]), ClosedError);
      await d.close();
    });
  });
}

/** A deployment of in-process brokers on a memory log (for brokers that need nothing else). */
export function memoryDeployment(node: () => Broker): BrokerDeployment {
  const store = new MemoryEventStore();
  return { store, node, close: () => store.close() };
}
