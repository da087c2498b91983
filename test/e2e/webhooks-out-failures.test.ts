import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';
import { receiverPool } from '../helpers/webhook-receiver.js';

/** Receivers that fail, throttle, vanish, hang, reset, redirect or never stop talking. */

const fast = {
  allowPrivateTargets: true,
  retryScheduleSeconds: [0, 0.1, 0.1, 0.1],
  retryJitter: 0,
  sweepIntervalSeconds: 0.05,
};

const herald = (outbound: Record<string, unknown> = {}) => startInProcess({ outbound: { ...fast, ...outbound } });

async function getJson(url: string) {
  const res = await fetch(url);
  return (await res.json()) as any;
}

async function endpoint(base: string, body: Record<string, unknown>) {
  const r = await postJson(`${base}/v1/endpoints`, body);
  assert.equal(r.status, 201, r.text);
  return r.json as { id: string; secret: string };
}

/** The endpoint's newest delivery, with its attempts. */
async function latest(base: string, id: string) {
  const l = await getJson(`${base}/v1/endpoints/${id}/deliveries?limit=1`);
  return l.deliveries[0];
}

const receiver = receiverPool();

describe('outbound webhooks: failing receivers', () => {
  test('honours Retry-After on 429 instead of the schedule', async (t) => {
    const h = await herald({ retryScheduleSeconds: [0, 3600] });
    t.after(() => h.close());
    const rx = await receiver();
    rx.handle((_r, i) => (i === 0 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 }));
    await endpoint(h.url, { url: rx.url, channels: ['a'] });
    await postJson(`${h.url}/v1/publish`, { channel: 'a', data: 1 });
    await waitFor(() => rx.requests.length === 2, 5_000, 'the retry after Retry-After');
    const gap = rx.requests[1]!.at - rx.requests[0]!.at;
    assert.ok(gap >= 900 && gap < 3_000, `retried after ${gap} ms, Retry-After said 1 s`);
  });

  test('a retry that comes due while fresh events stream to the same endpoint is sent; nothing is lost or doubled', async (t) => {
    // Fresh events go out by the fast path (stored leased, no claim); the failed first one waits
    // in the store and must still be claimed when due, not starved by the stream.
    const h = await herald({ retryScheduleSeconds: [0, 0.3] });
    t.after(() => h.close());
    const rx = await receiver();
    rx.handle((_r, i) => (i === 0 ? { status: 503 } : { status: 200 }));
    const ep = await endpoint(h.url, { url: rx.url, channels: ['a'] });
    for (let i = 0; i < 60; i++) {
      await postJson(`${h.url}/v1/publish`, { channel: 'a', data: i });
      await new Promise((r) => setTimeout(r, 15));
    }
    const ids = () => new Set(rx.requests.map((r) => String(r.headers['webhook-id'])));
    await waitFor(() => ids().size === 60, 10_000, 'every event');
    const first = String(rx.requests[0]!.headers['webhook-id']);
    const tries = rx.requests.filter((r) => String(r.headers['webhook-id']) === first);
    assert.equal(tries.length, 2, 'the first event: the 503, then its retry');
    assert.ok(tries[1]!.at - tries[0]!.at >= 250, `the retry waited for its schedule (${tries[1]!.at - tries[0]!.at} ms)`);
    assert.equal(rx.requests.length, 61, 'every other event exactly once');
    assert.deepEqual(rx.overlaps, []);
    const d = (await getJson(`${h.url}/v1/endpoints/${ep.id}/deliveries?status=pending`)).deliveries;
    assert.deepEqual(d, []);
  });

  test('410 disables the endpoint, keeps its deliveries, and says so on the system channel', async (t) => {
    const h = await herald();
    t.after(() => h.close());
    const rx = await receiver();
    rx.handle(() => ({ status: 410 }));
    const ep = await endpoint(h.url, { url: rx.url, channels: ['a'] });
    await postJson(`${h.url}/v1/publish`, { channel: 'a', data: 'first' });
    await waitFor(async () => (await getJson(`${h.url}/v1/endpoints/${ep.id}`)).enabled === false);
    const view = await getJson(`${h.url}/v1/endpoints/${ep.id}`);
    assert.equal(view.disabledReason, 'gone');
    const sys = await waitFor(async () => (await getJson(`${h.url}/v1/events?channel=herald.system`)).events[0]);
    assert.equal(sys.type, 'endpoint.disabled');
    assert.deepEqual([sys.data.endpointId, sys.data.reason], [ep.id, 'gone']);
    // Events that match while it is disabled are kept, and sent once it is enabled again.
    await postJson(`${h.url}/v1/publish`, { channel: 'a', data: 'second' });
    await waitFor(async () => (await getJson(`${h.url}/v1/endpoints/${ep.id}/deliveries?status=held`)).deliveries.length === 2);
    assert.equal(rx.requests.length, 1);
    rx.handle(() => ({ status: 200 }));
    const patch = await fetch(`${h.url}/v1/endpoints/${ep.id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ enabled: true }),
    });
    assert.equal(patch.status, 200);
    await waitFor(() => rx.requests.length === 3, 5_000, 'both held deliveries');
    assert.deepEqual(rx.requests.slice(1).map((r) => JSON.parse(r.body).data).sort(), ['first', 'second']);
  });

  test('a hanging receiver times out and never delays another endpoint', async (t) => {
    const h = await herald({ timeoutSeconds: 0.5, leaseSeconds: 5 });
    t.after(() => h.close());
    const stuck = await receiver();
    stuck.handle(() => 'hang');
    const healthy = await receiver();
    const a = await endpoint(h.url, { url: stuck.url, channels: ['a'] });
    await endpoint(h.url, { url: healthy.url, channels: ['a'] });
    const started = Date.now();
    await postJson(`${h.url}/v1/publish`, { channel: 'a', data: 1 });
    await waitFor(() => healthy.requests.length === 1);
    assert.ok(Date.now() - started < 450, 'the healthy endpoint did not wait for the stuck one');
    const d = await waitFor(async () => {
      const x = await latest(h.url, a.id);
      return x?.attempts.length > 0 ? x : undefined;
    });
    assert.equal(d.attempts[0].status, null);
    assert.match(d.attempts[0].error, /timeout/);
  });

  test('redirects are recorded as failures and never followed', async (t) => {
    const h = await herald({ retryScheduleSeconds: [0] });
    t.after(() => h.close());
    const rx = await receiver();
    rx.handle(() => ({ status: 302, headers: { location: 'http://169.254.169.254/latest/meta-data/' } }));
    const ep = await endpoint(h.url, { url: rx.url, channels: ['a'] });
    await postJson(`${h.url}/v1/publish`, { channel: 'a', data: 1 });
    const d = await waitFor(async () => {
      const x = await latest(h.url, ep.id);
      return x?.status === 'dead' ? x : undefined;
    });
    assert.equal(d.attempts[0].status, 302);
    assert.match(d.attempts[0].error, /redirect to http:\/\/169\.254\.169\.254\/latest\/meta-data\/ not followed/);
    assert.equal(rx.requests.length, 1);
  });

  test('a reset connection and an endless body are recorded on the attempt; the worker goes on', async (t) => {
    const h = await herald({ retryScheduleSeconds: [0, 0.1] });
    t.after(() => h.close());
    const rx = await receiver();
    rx.handle((_r, i) => (i === 0 ? 'reset' : 'endless'));
    const ep = await endpoint(h.url, { url: rx.url, channels: ['a'] });
    await postJson(`${h.url}/v1/publish`, { channel: 'a', data: 1 });
    const d = await waitFor(async () => {
      const x = await latest(h.url, ep.id);
      return x?.status === 'delivered' ? x : undefined;
    });
    assert.equal(d.attempts[0].status, null);
    assert.match(d.attempts[0].error, /ECONNRESET|socket|closed/i);
    assert.equal(d.attempts[1].status, 200);
    assert.equal(d.attempts[1].responseBody.length, 4096, 'the first 4 KiB of an endless body, no more');
  });

  test('the circuit breaker stops hammering an endpoint after consecutive failures', async (t) => {
    const h = await herald({
      retryScheduleSeconds: Array(20).fill(0.02),
      circuitBreakerFailures: 3,
      circuitBreakerCooldownSeconds: 60,
    });
    t.after(() => h.close());
    const rx = await receiver();
    rx.handle(() => ({ status: 500 }));
    const ep = await endpoint(h.url, { url: rx.url, channels: ['a'] });
    await postJson(`${h.url}/v1/publish`, { channel: 'a', data: 1 });
    await waitFor(() => rx.requests.length === 3);
    await waitFor(async () => (await getJson(`${h.url}/v1/endpoints/${ep.id}`)).circuit === 'open');
    // The schedule wants a retry every 20 ms: wait until the next one is overdue by many sweeps
    // of the queue (50 ms each); with the circuit open it is still not sent.
    const d = await waitFor(async () => {
      const x = await latest(h.url, ep.id);
      return Date.parse(x.nextAttemptAt) < Date.now() - 300 ? x : undefined;
    });
    assert.equal(d.status, 'pending', 'nothing is lost while the circuit is open');
    assert.equal(rx.requests.length, 3);
  });

  test('an endpoint failing longer than the limit is disabled and announced', async (t) => {
    const h = await herald({ retryScheduleSeconds: Array(50).fill(0.05), disableAfterFailingSeconds: 0.3 });
    t.after(() => h.close());
    const rx = await receiver();
    rx.handle(() => ({ status: 500 }));
    const ep = await endpoint(h.url, { url: rx.url, channels: ['a'] });
    await postJson(`${h.url}/v1/publish`, { channel: 'a', data: 1 });
    const view = await waitFor(async () => {
      const v = await getJson(`${h.url}/v1/endpoints/${ep.id}`);
      return v.enabled === false ? v : undefined;
    });
    assert.equal(view.disabledReason, 'failing');
    const sys = await waitFor(async () => (await getJson(`${h.url}/v1/events?channel=herald.system`)).events[0]);
    assert.equal(sys.data.reason, 'failing');
    assert.equal((await latest(h.url, ep.id)).status, 'held');
  });
});
