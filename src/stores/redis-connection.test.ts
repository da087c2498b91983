import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REDIS_RETRY_MAX_MS, REDIS_RETRY_MIN_MS, redisRetryDelayMs } from './redis-connection.js';

describe('redisRetryDelayMs', () => {
  it('doubles from the minimum and stops at the cap', () => {
    const noJitter = (): number => 0;
    assert.equal(redisRetryDelayMs(1, noJitter), REDIS_RETRY_MIN_MS);
    assert.equal(redisRetryDelayMs(2, noJitter), 2 * REDIS_RETRY_MIN_MS);
    assert.equal(redisRetryDelayMs(3, noJitter), 4 * REDIS_RETRY_MIN_MS);
    assert.equal(redisRetryDelayMs(50, noJitter), REDIS_RETRY_MAX_MS);
    assert.equal(redisRetryDelayMs(10_000, noJitter), REDIS_RETRY_MAX_MS);
  });

  it('draws part of each delay at random, never below half of it nor above the cap', () => {
    for (let attempt = 1; attempt < 40; attempt++) {
      const ceiling = redisRetryDelayMs(attempt, () => 0);
      const low = redisRetryDelayMs(attempt, () => 0.999_999);
      assert.ok(low >= Math.floor(ceiling / 2) && low < ceiling, `attempt ${attempt}: ${low} of ${ceiling}`);
      assert.ok(ceiling <= REDIS_RETRY_MAX_MS);
    }
  });
});
