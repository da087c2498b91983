import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReplaySlots } from './replay-slots.js';

test('runs at most `max` replays at once; the rest start in arrival order as slots free', async () => {
  const slots = new ReplaySlots(2);
  const started: string[] = [];
  const releases = new Map<string, () => void>();
  const ask = (name: string) => void slots.acquire({}).then((r) => (started.push(name), releases.set(name, r)));
  for (const n of ['a', 'b', 'c', 'd']) ask(n);
  await Promise.resolve();
  assert.deepEqual(started, ['a', 'b']);
  assert.equal(slots.waiting, 2);
  releases.get('a')!();
  releases.get('a')!(); // idempotent: frees one slot, not two
  await Promise.resolve();
  assert.deepEqual(started, ['a', 'b', 'c']);
  assert.equal(slots.running, 2);
});

test('one replay at a time per owner, without holding back other owners', async () => {
  const slots = new ReplaySlots(0);
  const conn = {};
  const other = {};
  const started: string[] = [];
  let release1!: () => void;
  void slots.acquire(conn).then((r) => (started.push('conn-1'), (release1 = r)));
  void slots.acquire(conn).then(() => started.push('conn-2'));
  void slots.acquire(other).then(() => started.push('other'));
  await Promise.resolve();
  assert.deepEqual(started, ['conn-1', 'other']);
  release1();
  await Promise.resolve();
  assert.deepEqual(started, ['conn-1', 'other', 'conn-2']);
});
