import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { parsePosition } from '../../src/core/position.js';
import { MemoryBroker } from '../../src/brokers/memory-broker.js';
import type { StoredEvent } from '../../src/core/event.js';
import type { EventStore } from '../../src/core/event-store.js';
import { Hub } from '../../src/core/hub.js';
import { Subscription, type DisconnectReason, type ResetReason } from '../../src/core/subscription.js';
import { MemoryEventStore } from '../../src/stores/memory-event-store.js';
import { SqliteEventStore } from '../../src/stores/sqlite-event-store.js';
import { waitFor } from '../helpers/herald.js';

/**
 * The position model, as a property (DESIGN.md guarantee 3): whatever the interleaving of
 * publishes (batches over several channels, repeated idempotency keys), subscribers that connect,
 * disconnect, are cut off as slow and resume (from their last id, from an older id or from a
 * position the log never had), retention pruning by count and by age, and a clock that moves,
 * every connection sees exactly the events of its patterns after its position, in log order, with
 * no gap and no duplicate; and a position the log no longer covers gets the reset signal, never a
 * silent skip. Run through the real Hub and Subscription on the memory and SQLite stores.
 *
 * A failure prints fast-check's seed and path; replay it with
 * `HERALD_PROPERTY_SEED=<seed> HERALD_PROPERTY_PATH=<path> node scripts/run-tests.mjs resume-never`.
 * `HERALD_PROPERTY_RUNS=<n>` runs more (or fewer) cases than the bounded default.
 */

/** Cases per store: enough to find interleaving bugs, bounded so the file runs in seconds. */
const RUNS = { memory: 150, sqlite: 60 } as const;
/** Commands per case: long enough for several resumes, prunes and reconnects. */
const MAX_COMMANDS = 40;
/** Subscribers beyond WRITE_SLICE_SUBSCRIBERS (32), so some rounds are written in slices. */
const CROWD = 40;
/** ms to wait for live events to reach every open connection at the end of a case. */
const SETTLE_TIMEOUT_MS = 10_000;
/** ms one case may take before it counts as a failure (a hang): generous, the machine is shared. */
const CASE_TIMEOUT_MS = 20_000;
/** ms a whole property may run, shrinking included, before it stops with what it has. */
const SHRINK_TIME_LIMIT_MS = 60_000;

const CHANNELS = ['a', 'b', 'c.x', 'c.y', 'c.y.z'] as const;
const PATTERNS = ['a', 'b', 'c.x', 'c.*', 'c.>', 'c.y.z', '>'] as const;
const CLIENTS = 3;

/** The model's own matcher, written apart from src/core/channel.ts so it checks it too. */
function matchesModel(pattern: string, channel: string): boolean {
  const p = pattern.split('.');
  const c = channel.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return c.length > i;
    if (i >= c.length || (p[i] !== '*' && p[i] !== c[i])) return false;
  }
  return p.length === c.length;
}

type Entry = { kind: 'event'; seq: number } | { kind: 'reset'; reason: ResetReason; head: number };

/** One connection, as a client sees it: everything written to it, in order. */
class Connection extends Subscription {
  readonly entries: Entry[] = [];
  disconnected: DisconnectReason | undefined;
  slow = false;
  readonly maxBacklogBytes = 1 << 20;
  protected write(events: readonly StoredEvent[]): void {
    for (const e of events) this.entries.push({ kind: 'event', seq: e.seq });
  }
  protected writeReset(reason: ResetReason, head: string): void {
    this.entries.push({ kind: 'reset', reason, head: parsePosition(head).seq });
  }
  backlogBytes(): number {
    return this.slow ? this.maxBacklogBytes + 1 : 0;
  }
  drained(): Promise<void> {
    return Promise.resolve();
  }
  protected disconnect(reason: DisconnectReason): void {
    this.disconnected = reason;
  }
}

/**
 * The store as a client of a remote backend sees it: every read, head and append answers after
 * some turns of the event loop (chosen by the case), so publishes, dispatches and replays overlap
 * in every order, as they do over a network. The in-process stores answer at once, which would
 * leave the seam between replay and live events untested.
 */
function yielding(store: EventStore, turns: readonly number[]): EventStore {
  let i = 0;
  const pause = async () => {
    const n = turns[i++ % turns.length]!;
    for (let k = 0; k < n; k++) await new Promise((r) => setImmediate(r));
  };
  const slow = new Set<PropertyKey>(['read', 'head', 'append']);
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      const fn = (value as (...args: unknown[]) => Promise<unknown>).bind(target);
      if (!slow.has(prop)) return fn;
      return async (...args: unknown[]) => {
        await pause();
        const result = await fn(...args);
        await pause();
        return result;
      };
    },
  });
}

type From = { kind: 'last' } | { kind: 'older'; pick: number } | { kind: 'future' } | { kind: 'live' };
type Command =
  | { kind: 'publish'; batch: { channel: string; key: string | undefined }[]; wait: boolean }
  | { kind: 'connect'; client: number; from: From; wait: boolean }
  | { kind: 'disconnect'; client: number }
  | { kind: 'slow'; client: number }
  | { kind: 'prune'; maxEvents: number; maxAgeMs: number }
  | { kind: 'tick'; ms: number }
  | { kind: 'settle' };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('publish' as const),
      batch: fc.array(
        fc.record({
          channel: fc.constantFrom(...CHANNELS),
          key: fc.option(fc.constantFrom('k1', 'k2', 'k3'), { freq: 4, nil: undefined }),
        }),
        { minLength: 1, maxLength: 4 },
      ),
      wait: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('connect' as const),
      client: fc.nat(CLIENTS - 1),
      from: fc.oneof(
        { weight: 4, arbitrary: fc.constant({ kind: 'last' as const }) },
        { weight: 2, arbitrary: fc.record({ kind: fc.constant('older' as const), pick: fc.nat() }) },
        { weight: 1, arbitrary: fc.constant({ kind: 'future' as const }) },
        { weight: 1, arbitrary: fc.constant({ kind: 'live' as const }) },
      ),
      wait: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('disconnect' as const), client: fc.nat(CLIENTS - 1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('slow' as const), client: fc.nat(CLIENTS - 1) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('prune' as const),
      maxEvents: fc.nat(12),
      maxAgeMs: fc.constantFrom(0, 0, 5, 20),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 10 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'settle' as const }) },
);

const scenarioArb = fc.record({
  patterns: fc.array(fc.subarray([...PATTERNS], { minLength: 1 }), { minLength: CLIENTS, maxLength: CLIENTS }),
  crowd: fc.boolean(),
  writeWindowMs: fc.constantFrom(0, 0, 2),
  turns: fc.array(fc.nat(3), { minLength: 1, maxLength: 8 }),
  commands: fc.array(commandArb, { maxLength: MAX_COMMANDS }),
});
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

interface Opened {
  conn: Connection;
  patterns: readonly string[];
  /** The position asked for; undefined for a live start. */
  since: number | undefined;
  /** For a live start: the log head when it subscribed (nothing was in flight). */
  liveFrom?: number;
  /** The reset this connection must get, worked out by the model when it connected. */
  expectReset: ResetReason | undefined;
}

async function runScenario(s: Scenario, store: EventStore, clock: { now: number }): Promise<void> {
  const hub = new Hub({ store: yielding(store, s.turns), broker: new MemoryBroker(), writeWindowMs: s.writeWindowMs });
  /** Every event ever stored, by seq (pruned ones too: a connection may have seen them). */
  const log: { seq: number; channel: string; time: number }[] = [];
  let prunedThrough = 0;
  let pending: Promise<unknown>[] = [];
  const settle = async () => {
    while (pending.length > 0) {
      const p = pending;
      pending = [];
      await Promise.all(p);
    }
  };
  const opened: Opened[] = [];
  const current: (Opened | undefined)[] = Array.from({ length: CLIENTS }, () => undefined);
  /** A client's position: the id of the last event or reset it saw (0 before any). */
  const position = (c: number): number => {
    const o = current[c];
    const last = o?.conn.entries.at(-1);
    if (last) return last.kind === 'event' ? last.seq : last.head;
    return o ? o.since ?? o.liveFrom ?? 0 : 0;
  };
  const head = () => (log.length ? log[log.length - 1]!.seq : 0);

  const open = async (patterns: readonly string[], since: number | undefined, wait: boolean) => {
    const o: Opened = { conn: new Connection(patterns), patterns, since, expectReset: undefined };
    if (since === undefined) {
      // A live start begins at the head the hub reads: the model knows it only when nothing
      // else is in flight, from before the subscription until it is live.
      await settle();
      o.liveFrom = head();
      wait = true;
    } else if (since > head() + MAX_COMMANDS * 4) {
      o.expectReset = 'position_unknown'; // beyond every position this case can ever reach
    } else if (since < prunedThrough) {
      o.expectReset = 'position_pruned';
    }
    opened.push(o);
    const subscribed = hub.subscribe(o.conn, since === undefined ? undefined : { seq: since });
    if (wait) await subscribed;
    else pending.push(subscribed);
    return o;
  };

  const crowd = s.crowd ? await Promise.all(Array.from({ length: CROWD }, () => open(['>'], 0, true))) : [];
  for (const cmd of s.commands) {
    switch (cmd.kind) {
      case 'publish': {
        const published = hub
          .publish(cmd.batch.map((b) => ({ channel: b.channel, type: 'message', data: '1', idempotencyKey: b.key })))
          .then((results) => {
            for (const r of results) if (!r.duplicate) log.push({ seq: r.event.seq, channel: r.event.channel, time: r.event.time });
          });
        if (cmd.wait) await published;
        else pending.push(published);
        break;
      }
      case 'connect': {
        const c = cmd.client;
        const was = current[c];
        const at = position(c);
        if (was) hub.unsubscribe(was.conn); // a client that reconnects has dropped its old socket
        let since: number | undefined;
        if (cmd.from.kind === 'last') since = at;
        // An older id is one the client saw: at most the head. (Its position may still be a
        // future one it asked for and has not yet had the answer to.)
        else if (cmd.from.kind === 'older') since = cmd.from.pick % (Math.min(at, head()) + 1);
        else if (cmd.from.kind === 'future') since = head() + 1_000_000;
        current[c] = await open(s.patterns[c]!, since, cmd.wait);
        break;
      }
      case 'disconnect':
        if (current[cmd.client]) hub.unsubscribe(current[cmd.client]!.conn);
        break;
      case 'slow':
        if (current[cmd.client]) current[cmd.client]!.conn.slow = true;
        break;
      case 'prune': {
        await settle(); // the model must know every event before it can say what a prune drops
        const kept = log.filter((e) => e.seq > prunedThrough);
        let through = 0;
        if (cmd.maxEvents > 0 && kept.length > cmd.maxEvents) through = kept[kept.length - cmd.maxEvents - 1]!.seq;
        if (cmd.maxAgeMs > 0) {
          for (const e of kept) if (e.time < clock.now - cmd.maxAgeMs) through = Math.max(through, e.seq);
        }
        await store.prune({ maxEvents: cmd.maxEvents, maxAgeMs: cmd.maxAgeMs, idempotencyTtlMs: 3_600_000 }, clock.now);
        prunedThrough = Math.max(prunedThrough, through);
        assert.equal((await store.head()).prunedThrough, prunedThrough, 'the store prunes what the policy says');
        break;
      }
      case 'tick':
        clock.now += cmd.ms;
        break;
      case 'settle':
        await settle();
        break;
    }
  }
  await settle();

  const matching = (patterns: readonly string[], after: number) =>
    log.filter((e) => e.seq > after && patterns.some((p) => matchesModel(p, e.channel))).map((e) => e.seq);
  const expectedOf = (o: Opened) => {
    const first = o.conn.entries[0];
    const start = first?.kind === 'reset' ? first.head : o.since ?? o.liveFrom!;
    return matching(o.patterns, start);
  };
  const seenOf = (o: Opened) => o.conn.entries.flatMap((e) => (e.kind === 'event' ? [e.seq] : []));
  // Open connections catch up with the whole log (live events may still wait for a write window).
  await waitFor(
    () => opened.every((o) => o.conn.closed || seenOf(o).length >= expectedOf(o).length),
    SETTLE_TIMEOUT_MS,
    'every open connection to see the whole log',
  ).catch(() => undefined); // the assertions below say which connection fell short, and how
  for (const [i, o] of opened.entries()) {
    const what = `connection ${i} (${o.patterns.join(',')}) from ${o.since ?? `live@${o.liveFrom}`}`;
    const resets = o.conn.entries.filter((e) => e.kind === 'reset');
    // A connection closed before its subscription got as far as the reset has seen nothing.
    const closedEarly = o.conn.closed && o.conn.entries.length === 0;
    if (o.expectReset && !closedEarly) {
      assert.equal(resets.length, 1, `${what}: one reset, ${o.expectReset}`);
      assert.equal(o.conn.entries[0]!.kind, 'reset', `${what}: the reset comes before any event`);
      assert.equal((resets[0] as { reason: ResetReason }).reason, o.expectReset, `${what}: reset reason`);
    } else if (!o.expectReset) {
      assert.equal(resets.length, 0, `${what}: a position the log still covers is resumed, not reset`);
    }
    const seen = seenOf(o);
    const expected = expectedOf(o);
    // No gap, no duplicate, log order: what it saw is the start of what it is owed.
    assert.deepEqual(seen, expected.slice(0, seen.length), `${what}: saw ${seen} of ${expected}`);
    if (!o.conn.closed) assert.deepEqual(seen, expected, `${what}: an open connection is owed the whole log`);
    if (o.conn.disconnected !== undefined) assert.equal(o.conn.disconnected, 'slow');
  }
  assert.ok(crowd.every((o) => !o.conn.closed));
  await hub.close();
}

function propertyOptions(runs: number): fc.Parameters<[Scenario]> {
  const env = process.env;
  return {
    timeout: CASE_TIMEOUT_MS,
    // Shrinking stops here, reporting the smallest case found so far (a hang costs a settle timeout a step).
    interruptAfterTimeLimit: SHRINK_TIME_LIMIT_MS,
    markInterruptAsFailure: true,
    numRuns: env.HERALD_PROPERTY_RUNS ? Number(env.HERALD_PROPERTY_RUNS) : runs,
    ...(env.HERALD_PROPERTY_SEED ? { seed: Number(env.HERALD_PROPERTY_SEED) } : {}),
    ...(env.HERALD_PROPERTY_PATH ? { path: env.HERALD_PROPERTY_PATH } : {}),
  };
}

test('memory store: no interleaving of publishes, resumes and pruning gives a gap, a duplicate or a silent skip', async () => {
  await fc.assert(
    fc.asyncProperty(scenarioArb, async (s) => {
      const clock = { now: 1_000_000 };
      await runScenario(s, new MemoryEventStore({ now: () => clock.now }), clock);
    }),
    propertyOptions(RUNS.memory),
  );
});

test('SQLite store: no interleaving of publishes, resumes and pruning gives a gap, a duplicate or a silent skip', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-property-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  await fc.assert(
    fc.asyncProperty(scenarioArb, async (s) => {
      const clock = { now: 1_000_000 };
      const store = new SqliteEventStore({
        file: join(dir, `events-${n++}.db`),
        synchronous: 'normal',
        backgroundCheckpoints: false,
        now: () => clock.now,
      });
      try {
        await runScenario(s, store, clock);
      } finally {
        await store.close();
      }
    }),
    propertyOptions(RUNS.sqlite),
  );
});
