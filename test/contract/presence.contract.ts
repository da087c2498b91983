import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import type { PresenceChange, PresenceSnapshot, PresenceStore } from '../../src/core/presence.js';
import { waitFor } from '../helpers/herald.js';

/** The nodes of one deployment, sharing presence. */
export interface PresenceCluster {
  /** The presence store of one more node (the same store for an in-process one). */
  node(): PresenceStore;
}

export interface PresenceFactory {
  /** A fresh deployment with no members, closed by `t.after`; undefined when the test skipped. */
  create(t: TestContext, opts: { patterns: readonly string[]; leaveDelayMs: number }): Promise<PresenceCluster | undefined>;
}

/** milliseconds a shared store may take to show a change made on another node. */
export const PROPAGATION_TIMEOUT_MS = 5_000;
const ROOM = 'room.1';
const PATTERNS = ['room.*'];

/** Every change a node's watchers saw on one channel. */
export class Recorder {
  readonly changes: PresenceChange[] = [];
  constructor(store: PresenceStore, channel: string) {
    store.watch(channel, (c) => this.changes.push(c));
  }
  count(kind: PresenceChange['kind'], identity: string): number {
    return this.changes.filter((c) => c.kind === kind && c.identity === identity).length;
  }
}

/** Waits until `check` holds on every node. */
export async function onEvery<T>(nodes: readonly T[], check: (n: T) => boolean, what: string): Promise<void> {
  await waitFor(() => nodes.every(check), PROPAGATION_TIMEOUT_MS, what);
}

/**
 * Waits until every change made before it has reached every recorder: an identity no one else
 * uses joins on `store` and, once every node saw that, leaves; its leave, which comes last in
 * every node's order, is awaited everywhere. With a leave delay this also outlasts every leave window opened before.
 */
export async function barrier(store: PresenceStore, channel: string, recorders: readonly Recorder[]): Promise<void> {
  const marker = `~barrier-${Math.random().toString(36).slice(2)}`;
  const leave = store.join(channel, marker);
  await onEvery(recorders, (r) => r.count('join', marker) === 1, `the join of ${marker}`);
  leave();
  await onEvery(recorders, (r) => r.count('leave', marker) === 1, `the leave of ${marker}`);
}

export function members(s: PresenceSnapshot): [string, number][] {
  return s.members.filter((m) => !m.identity.startsWith('~barrier')).map((m) => [m.identity, m.connections]);
}

/** The specification of src/core/presence.ts, checked with two and three nodes. */
export function presenceContract(name: string, factory: PresenceFactory): void {
  describe(`PresenceStore contract: ${name}`, () => {
    test('connections of one identity on several nodes are one member with their sum; anonymous ones count apart; sorted by identity', async (t) => {
      const cluster = await factory.create(t, { patterns: PATTERNS, leaveDelayMs: 0 });
      if (!cluster) return;
      const nodes = [cluster.node(), cluster.node(), cluster.node()];
      const [a, b, c] = nodes as [PresenceStore, PresenceStore, PresenceStore];
      a.join(ROOM, 'zed');
      b.join(ROOM, 'amy');
      c.join(ROOM, 'zed');
      a.join(ROOM, 'Bob');
      c.join(ROOM, 'zed');
      a.join(ROOM, undefined);
      b.join(ROOM, undefined);
      const want: [string, number][] = [
        ['Bob', 1],
        ['amy', 1],
        ['zed', 3],
      ];
      await onEvery(nodes, (n) => JSON.stringify(members(n.snapshot(ROOM))) === JSON.stringify(want), 'the union of members');
      for (const n of nodes) assert.deepEqual(n.snapshot(ROOM), { channel: ROOM, members: want.map(([identity, connections]) => ({ identity, connections })), anonymous: 2 });
    });

    test('watchers on every node see one join when the first connection appears anywhere and one leave when the last is gone everywhere', async (t) => {
      const cluster = await factory.create(t, { patterns: PATTERNS, leaveDelayMs: 0 });
      if (!cluster) return;
      const nodes = [cluster.node(), cluster.node()];
      const [a, b] = nodes as [PresenceStore, PresenceStore];
      const seen = nodes.map((n) => new Recorder(n, ROOM));
      const onA = a.join(ROOM, 'u');
      const onB = b.join(ROOM, 'u');
      await onEvery(nodes, (n) => n.snapshot(ROOM).members[0]?.connections === 2, 'u with two connections');
      onA();
      onA(); // a connection that ends twice leaves once
      await onEvery(nodes, (n) => n.snapshot(ROOM).members[0]?.connections === 1, 'u with one connection');
      await barrier(a, ROOM, seen);
      for (const r of seen) assert.deepEqual([r.count('join', 'u'), r.count('leave', 'u')], [1, 0], 'u is still there on b');
      onB();
      await barrier(b, ROOM, seen);
      for (const r of seen) {
        assert.deepEqual([r.count('join', 'u'), r.count('leave', 'u')], [1, 1]);
        assert.deepEqual(
          r.changes.filter((c) => c.identity === 'u').map((c) => c.kind),
          ['join', 'leave'],
        );
      }
      for (const n of nodes) assert.deepEqual(members(n.snapshot(ROOM)), []);
    });

    test('a connection of the same identity on another node within the leave delay cancels the leave', async (t) => {
      const cluster = await factory.create(t, { patterns: PATTERNS, leaveDelayMs: 500 });
      if (!cluster) return;
      const nodes = [cluster.node(), cluster.node(), cluster.node()];
      const [a, b] = nodes as [PresenceStore, PresenceStore];
      const seen = nodes.map((n) => new Recorder(n, ROOM));
      a.join(ROOM, 'u')();
      // the member waits out its leave window, still listed
      assert.deepEqual(members(a.snapshot(ROOM)), [['u', 0]]);
      b.join(ROOM, 'u');
      await barrier(a, ROOM, seen);
      for (const r of seen) assert.deepEqual([r.count('join', 'u'), r.count('leave', 'u')], [1, 0]);
      for (const n of nodes) assert.deepEqual(members(n.snapshot(ROOM)), [['u', 1]]);
    });

    test('a channel presence does not track: join is a no-op and its snapshot stays empty', async (t) => {
      const cluster = await factory.create(t, { patterns: PATTERNS, leaveDelayMs: 0 });
      if (!cluster) return;
      const nodes = [cluster.node(), cluster.node()];
      const [a] = nodes as [PresenceStore];
      assert.equal(a.enabled('room.1'), true);
      assert.equal(a.enabled('room.1.x'), false);
      assert.equal(a.enabled('lobby'), false);
      const seen = nodes.map((n) => new Recorder(n, 'lobby'));
      const room = nodes.map((n) => new Recorder(n, ROOM));
      a.join('lobby', 'u');
      a.join('lobby', undefined);
      await barrier(a, ROOM, room);
      for (const n of nodes) assert.deepEqual(n.snapshot('lobby'), { channel: 'lobby', members: [], anonymous: 0 });
      for (const r of seen) assert.deepEqual(r.changes, []);
    });

    test('close is idempotent and joins after it are no-ops', async (t) => {
      const cluster = await factory.create(t, { patterns: PATTERNS, leaveDelayMs: 1_000 });
      if (!cluster) return;
      const a = cluster.node();
      const seen = new Recorder(a, ROOM);
      a.join(ROOM, 'u')(); // a leave pending when the store closes is dropped
      a.close();
      a.close();
      a.join(ROOM, 'v');
      assert.deepEqual(members(a.snapshot(ROOM)), []);
      assert.deepEqual(
        seen.changes.map((c) => c.kind),
        ['join'],
      );
    });
  });
}
