import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { openEventSource } from '../helpers/clients.js';
import { seqOfId, startInProcess, waitFor } from '../helpers/herald.js';
import { githubRequest, send, stripeRequest } from '../helpers/webhook-signers.js';

const SECRET = 'whsec_delivery_test_secret';
const GITHUB_SECRET = 'gh-delivery-secret';

let h: Awaited<ReturnType<typeof startInProcess>>;
before(async () => {
  h = await startInProcess({
    sources: {
      shop: { provider: 'stripe', secret: SECRET, channel: 'orders', maxBodyBytes: 4_096 },
      gh: { provider: 'github', secret: GITHUB_SECRET, channel: 'gh.{type}', unsignedTypeInChannel: true, maxBodyBytes: 4_194_304 },
    },
  });
});
after(() => h.close());

const hook = (name: string) => `${h.url}/v1/webhooks/${name}`;
const paid = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  object: 'event',
  type: 'payment_intent.succeeded',
  data: { object: { id: `pi_${id}`, amount: 1999, currency: 'eur', ...extra } },
});

async function received(name: string, query = ''): Promise<any> {
  const res = await fetch(`${hook(name)}/received${query}`);
  assert.equal(res.status, 200);
  return res.json();
}

describe('inbound webhooks: delivery guarantees', () => {
  test('a provider retry of the same event id answers 2xx and is published once', async () => {
    const sse = openEventSource(`${h.url}/v1/stream?channel=orders`, ['payment_intent.succeeded']);
    try {
      await waitFor(() => sse.opens > 0, 5_000, 'the SSE stream to open');
      const req = stripeRequest(paid('evt_dup_1'), SECRET);
      const first = await send(hook('shop'), req);
      // A retry later, and two concurrent ones (they share one group commit).
      const retries = await Promise.all([send(hook('shop'), req), send(hook('shop'), req), send(hook('shop'), req)]);
      assert.equal(first.status, 200);
      assert.equal(first.json.duplicate, false);
      for (const r of retries) {
        assert.equal(r.status, 200);
        assert.equal(r.json.duplicate, true);
        assert.equal(r.json.id, first.json.id, 'a retry is answered with the first event id');
      }
      // A later, different event marks the end: everything before it has been delivered.
      const marker = await send(hook('shop'), stripeRequest(paid('evt_dup_marker'), SECRET));
      await waitFor(() => sse.messages.some((m) => m.lastEventId === marker.json.id), 5_000, 'the marker event');
      assert.equal(sse.messages.filter((m) => JSON.parse(m.data).id === 'evt_dup_1').length, 1);
      const dups = (await received('shop', '?status=duplicate')).received.filter((r: any) => r.providerEventId === 'evt_dup_1');
      assert.equal(dups.length, 3, 'every retry is in the inbound log as a duplicate');
      assert.ok(dups.every((r: any) => r.payload === undefined && r.eventId === first.json.id));
    } finally {
      sse.close();
    }
  });

  test('a body over the source limit is refused 413 and logged without its payload', async () => {
    const big = stripeRequest(paid('evt_big', { note: 'x'.repeat(8_000) }), SECRET);
    const res = await send(hook('shop'), big);
    assert.equal(res.status, 413);
    assert.equal(res.json.error.code, 'BODY_TOO_LARGE');
    const log = await waitFor(async () => {
      const r = (await received('shop', '?status=rejected')).received;
      return r.find((x: any) => x.error.code === 'BODY_TOO_LARGE');
    });
    assert.equal(log.payload, undefined);
    assert.ok(log.headers['stripe-signature'], 'the signature header is kept for the audit');
  });

  test('a source may take bodies larger than the global limit (GitHub: MBs)', async () => {
    const payload = { action: 'opened', blob: 'y'.repeat(2_000_000) };
    const res = await send(hook('gh'), githubRequest(payload, GITHUB_SECRET, 'pull_request', 'd-big-1'));
    assert.equal(res.status, 200, JSON.stringify(res.json));
  });

  test('the inbound log lists accepted (with payload), duplicate and rejected (with reason) arrivals, newest first', async () => {
    const ok = stripeRequest(paid('evt_log_1'), SECRET);
    const accepted = await send(hook('shop'), ok);
    await send(hook('shop'), ok);
    const bad = await send(hook('shop'), { ...ok, body: ok.body.replace('1999', '1') });
    assert.equal(bad.status, 401);
    const list = await waitFor(async () => {
      const r = (await received('shop', '?limit=10')).received;
      return r[0]?.status === 'rejected' ? r : undefined;
    });
    const [rejected, duplicate, first] = list;
    assert.equal(rejected.error.code, 'SIGNATURE_INVALID');
    assert.equal(rejected.payload, undefined);
    assert.equal(duplicate.status, 'duplicate');
    assert.equal(first.status, 'accepted');
    assert.equal(first.id, accepted.json.receipt);
    assert.equal(first.eventId, accepted.json.id);
    assert.equal(first.type, 'payment_intent.succeeded');
    assert.deepEqual(first.payload, JSON.parse(ok.body));
    const page = await received('shop', `?limit=1&before=${first.id}`);
    assert.ok(Number(page.received[0].id) < Number(first.id));
    assert.ok(page.next);
  });

  test('replay publishes an accepted payload again as a new event, and refuses others', async () => {
    const ok = stripeRequest(paid('evt_replay_1'), SECRET);
    const accepted = await send(hook('shop'), ok);
    const sse = openEventSource(`${h.url}/v1/stream?channel=orders`, ['payment_intent.succeeded']);
    try {
      await waitFor(() => sse.opens > 0, 5_000, 'the SSE stream to open');
      const res = await fetch(`${hook('shop')}/received/${accepted.json.receipt}/replay`, { method: 'POST' });
      assert.equal(res.status, 201);
      const body = (await res.json()) as { id: string; receipt: string };
      assert.ok(seqOfId(body.id) > seqOfId(accepted.json.id));
      await sse.until(1);
      assert.equal(sse.messages[0]!.lastEventId, body.id);
      assert.deepEqual(JSON.parse(sse.messages[0]!.data), JSON.parse(ok.body));
      const replayed = (await received('shop', '?status=replayed')).received[0];
      assert.equal(replayed.replayOf, accepted.json.receipt);
    } finally {
      sse.close();
    }
    const dup = await send(hook('shop'), ok);
    const notReplayable = await fetch(`${hook('shop')}/received/${dup.json.receipt}/replay`, { method: 'POST' });
    assert.equal(notReplayable.status, 409);
    assert.equal(((await notReplayable.json()) as any).error.code, 'RECEIPT_NOT_REPLAYABLE');
    const missing = await fetch(`${hook('shop')}/received/999999/replay`, { method: 'POST' });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as any).error.code, 'RECEIPT_NOT_FOUND');
  });

  test('the inbound log of an unknown source is 404 SOURCE_UNKNOWN', async () => {
    const res = await fetch(`${hook('nope')}/received`);
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as any).error.code, 'SOURCE_UNKNOWN');
  });

  test('a GitHub delivery in the form content type is verified over the raw form bytes', async () => {
    const json = JSON.stringify({ zen: 'Design for failure.' });
    const body = `payload=${encodeURIComponent(json)}`;
    const signature = 'sha256=' + createHmac('sha256', GITHUB_SECRET).update(body).digest('hex');
    const res = await send(hook('gh'), {
      body,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-github-event': 'ping',
        'x-github-delivery': 'd-form-1',
        'x-hub-signature-256': signature,
      },
    });
    assert.equal(res.status, 200);
    const events = (await (await fetch(`${h.url}/v1/events?channel=gh.ping`)).json()) as { events: any[] };
    assert.deepEqual(events.events.find((e) => e.id === res.json.id)?.data, { zen: 'Design for failure.' });
  });
});
