import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawnHerald } from '../helpers/herald.js';
import { send, stripeRequest } from '../helpers/webhook-signers.js';

const SECRET = 'whsec_durability_test_secret';
// debug: the most the logs ever say about a webhook, so the no-secret check below covers it all.
const config = { log: { level: 'debug' }, sources: { stripe: { provider: 'stripe', secret: SECRET, channel: 'orders' }, open: { provider: 'none', channel: 'open' } } };
/** Webhooks sent before the kill, half of them concurrently (one group commit). */
const COUNT = 40;

const paid = (id: string) => ({ id, object: 'event', type: 'payment_intent.succeeded', data: { object: { id: `pi_${id}` } } });

test('every webhook answered 2xx is in the log after SIGKILL and restart, its retry is still a duplicate; no secret is logged, an unsigned source is warned about', async () => {
  const first = await spawnHerald(config);
  const acked: { provider: string; id: string }[] = [];
  try {
    for (let i = 0; i < COUNT / 2; i++) {
      const res = await send(`${first.url}/v1/webhooks/stripe`, stripeRequest(paid(`evt_k_${i}`), SECRET));
      assert.equal(res.status, 200);
      acked.push({ provider: `evt_k_${i}`, id: res.json.id });
    }
    const burst = await Promise.all(
      Array.from({ length: COUNT / 2 }, (_, j) => send(`${first.url}/v1/webhooks/stripe`, stripeRequest(paid(`evt_k_b${j}`), SECRET))),
    );
    burst.forEach((res, j) => {
      assert.equal(res.status, 200);
      acked.push({ provider: `evt_k_b${j}`, id: res.json.id });
    });
    const forged = await send(`${first.url}/v1/webhooks/stripe`, stripeRequest(paid('evt_forged'), 'whsec_wrong'));
    assert.equal(forged.status, 401);
    assert.ok(
      first.logs.some((l) => l.level === 40 && l.source === 'open' && String(l.msg).includes('not verified')),
      'an unsigned source is warned about at start',
    );
    assert.ok(!JSON.stringify(first.logs).includes(SECRET), 'the signing secret never reaches the logs');
  } finally {
    // No shutdown path at all, right after the last 2xx.
    await first.kill();
  }

  const second = await spawnHerald(config, { dataDir: first.dataDir });
  try {
    const res = await fetch(`${second.url}/v1/events?channel=orders&limit=1000`);
    const stored = ((await res.json()) as { events: { id: string; data: { id: string } }[] }).events;
    for (const a of acked) {
      const e = stored.find((s) => s.id === a.id);
      assert.ok(e, `event ${a.id} (${a.provider}) survived`);
      assert.equal(e.data.id, a.provider);
    }
    assert.equal(stored.length, COUNT, 'nothing stored twice');
    const retry = await send(`${second.url}/v1/webhooks/stripe`, stripeRequest(paid('evt_k_0'), SECRET));
    assert.equal(retry.status, 200);
    assert.equal(retry.json.duplicate, true, 'the provider id survived the crash with its event');
    assert.equal(retry.json.id, acked[0]!.id);
    const log = (await (await fetch(`${second.url}/v1/webhooks/stripe/received?limit=500&status=accepted`)).json()) as { received: unknown[] };
    assert.equal(log.received.length, COUNT, 'every receipt survived with its event');
  } finally {
    await second.stop();
  }
});
