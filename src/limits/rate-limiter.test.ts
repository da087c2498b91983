import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OpenCounter, RateLimiter } from './rate-limiter.js';

test('a bucket allows a second of burst, then refills at the rate, with the wait in seconds', () => {
  let now = 0;
  const r = new RateLimiter(2, { now: () => now });
  assert.equal(r.take('a'), 0);
  assert.equal(r.take('a'), 0);
  assert.equal(r.take('a'), 1);
  assert.equal(r.take('b'), 0, 'keys are independent');
  now = 500;
  assert.equal(r.take('a'), 0, 'half a second refills one token at 2/s');
  assert.equal(r.take('a'), 1);
  assert.equal(new RateLimiter(0).take('x'), 0, '0 means no limit');
});

test('memory stays bounded under a flood of keys', () => {
  let now = 0;
  const r = new RateLimiter(1, { now: () => now, maxKeys: 100 });
  for (let i = 0; i < 1_000; i++) {
    now++;
    r.take(`k${i}`);
  }
  assert.ok(r.size <= 100, `size ${r.size}`);
});

test('open counts refuse past the maximum and forget keys at zero', () => {
  const c = new OpenCounter(2);
  assert.ok(c.acquire('ip'));
  assert.ok(c.acquire('ip'));
  assert.ok(!c.acquire('ip'));
  c.release('ip');
  assert.ok(c.acquire('ip'));
  c.release('ip');
  c.release('ip');
  assert.equal(c.count('ip'), 0);
});
