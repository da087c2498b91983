import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EPOCH_LENGTH, formatEventId, inLog, isEpoch, newEpoch, parsePosition } from './position.js';

test('an id is <epoch>-<seq>, and parses back to both', () => {
  const epoch = newEpoch();
  assert.equal(epoch.length, EPOCH_LENGTH);
  assert.ok(isEpoch(epoch));
  assert.equal(formatEventId(epoch, 42), `${epoch}-42`);
  assert.deepEqual(parsePosition(`${epoch}-42`), { seq: 42, epoch });
  assert.deepEqual(parsePosition('k3f9qa-0'), { seq: 0, epoch: 'k3f9qa' });
});

test('a bare integer is a position in the current log', () => {
  assert.deepEqual(parsePosition('0'), { seq: 0 });
  assert.deepEqual(parsePosition('17'), { seq: 17 });
  assert.deepEqual(parsePosition(17), { seq: 17 });
  assert.equal(inLog({ seq: 17 }, 'k3f9qa'), true);
  assert.equal(inLog({ seq: 17, epoch: 'k3f9qa' }, 'k3f9qa'), true);
  assert.equal(inLog({ seq: 17, epoch: 'zzzzzz' }, 'k3f9qa'), false);
});

test('anything else is POSITION_INVALID', () => {
  for (const bad of ['', '-1', '1.5', 'K3F9QA-1', 'k3f9qa-', '-42', 'a-b-1', 'k3f9qa-1\n', 'x'.repeat(17) + '-1', '1'.repeat(16), -1, 1.5, null, {}]) {
    assert.throws(() => parsePosition(bad), { code: 'POSITION_INVALID' }, JSON.stringify(bad));
  }
});

test('new epochs differ', () => {
  const seen = new Set(Array.from({ length: 1000 }, newEpoch));
  assert.ok(seen.size > 990);
  for (const e of seen) assert.match(e, /^[0-9a-z]{6}$/);
});
