import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startInProcess } from '../helpers/herald.js';

describe('GET /v1/events: rate-limited per client like publishes (limits.historyPerSecond)', () => {
  let h: Awaited<ReturnType<typeof startInProcess>>;
  before(async () => {
    // applyToLoopback: loopback is exempt by default; trustProxy makes one machine many clients.
    h = await startInProcess({ store: { type: 'memory' }, trustProxy: true, limits: { applyToLoopback: true, historyPerSecond: 5 } });
  });
  after(() => h.close());

  const read = (ip: string) => fetch(`${h.url}/v1/events?channel=orders.%3E`, { headers: { 'x-forwarded-for': ip } });

  test('a burst past the rate answers 429 with RATE_LIMITED and Retry-After; another client is not affected', async () => {
    // Sent at once, so the bucket has no time to refill between them.
    const burst = await Promise.all(Array.from({ length: 20 }, () => read('203.0.113.7')));
    const refused = burst.filter((r) => r.status === 429);
    assert.ok(burst.filter((r) => r.status === 200).length <= 6, 'at most a second of tokens');
    assert.ok(refused.length >= 14, `${refused.length} refused`);
    const body = (await refused[0]!.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'RATE_LIMITED');
    assert.match(body.error.message, /history/);
    assert.ok(Number(refused[0]!.headers.get('retry-after')) >= 1);
    assert.equal((await read('203.0.113.8')).status, 200);
  });
});
