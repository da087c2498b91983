import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { SWEEP_SLICES, Sweep } from './sweep.js';

test('a sweep visits every member once per period, a slice per tick, members added joining the next period', () => {
  mock.timers.enable({ apis: ['setInterval'] });
  try {
    const members = new Set(Array.from({ length: 150 }, (_, i) => i));
    const visits = new Map<number, number>();
    const sweep = new Sweep(15_000, () => members, (m) => visits.set(m, (visits.get(m) ?? 0) + 1));
    const tick = 15_000 / SWEEP_SLICES;
    mock.timers.tick(tick);
    // One tick visits its share, not everything.
    assert.equal(visits.size, Math.ceil(150 / SWEEP_SLICES));
    members.add(1_000);
    mock.timers.tick(15_000 - tick);
    assert.equal(visits.size, 150);
    assert.ok([...visits.values()].every((n) => n === 1));
    assert.equal(visits.get(1_000), undefined);
    mock.timers.tick(15_000);
    assert.ok([...members].every((m) => visits.get(m) === (m === 1_000 ? 1 : 2)));
    sweep.stop();
    mock.timers.tick(30_000);
    assert.equal(visits.get(0), 2);
  } finally {
    mock.timers.reset();
  }
});

test('a short period is cut into fewer slices, never below one', () => {
  mock.timers.enable({ apis: ['setInterval'] });
  try {
    const seen: number[] = [];
    const sweep = new Sweep(100, () => [1, 2, 3], (m) => seen.push(m));
    mock.timers.tick(100);
    assert.deepEqual(seen, [1, 2, 3]);
    sweep.stop();
  } finally {
    mock.timers.reset();
  }
});
