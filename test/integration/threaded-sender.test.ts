import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ThreadedWebhookSender } from '../../src/transports/webhook-out/threaded-sender.js';
import { WebhookSender } from '../../src/transports/webhook-out/webhook-sender.js';
import { createLogger } from '../../src/observability/logger.js';
import { startReceiver, type Reply } from '../helpers/webhook-receiver.js';

const opts = { timeoutMs: 2_000, allowPrivateTargets: true };
const strip = (r: { durationMs: number }) => ({ ...r, durationMs: 0 });

test('a sender thread answers exactly as the sender on the event loop does', async (t) => {
  const rx = await startReceiver();
  t.after(() => rx.close());
  rx.handle((req): Reply => {
    if (req.body === '"throttle"') return { status: 429, headers: { 'retry-after': '7' }, body: 'slow down' };
    if (req.body === '"move"') return { status: 302, headers: { location: 'http://169.254.169.254/' } };
    return { status: 200, body: 'ok' };
  });
  const threaded = new ThreadedWebhookSender(opts, 1, createLogger('silent'));
  const local = new WebhookSender(opts);
  t.after(() => Promise.all([threaded.close(), local.close()]));
  for (const body of ['"fine"', '"throttle"', '"move"']) {
    const [a, b] = await Promise.all([
      threaded.send(`${rx.url}/x`, { 'content-type': 'application/json' }, body),
      local.send(`${rx.url}/x`, { 'content-type': 'application/json' }, body),
    ]);
    assert.deepEqual(strip(a), strip(b), body);
  }
  // Many at once travel in batches and each gets its own answer.
  rx.handle((req) => ({ status: 200, body: req.body }));
  const many = await Promise.all(
    Array.from({ length: 200 }, (_, i) => threaded.send(`${rx.url}/n`, { 'content-type': 'application/json' }, String(i))),
  );
  assert.deepEqual(many.map((r) => r.responseBody), Array.from({ length: 200 }, (_, i) => String(i)));
  // Refused connections are described, not thrown.
  const refused = await threaded.send('http://127.0.0.1:1/', {}, '{}');
  assert.equal(refused.status, null);
  assert.match(refused.error ?? '', /ECONNREFUSED/);
});

test('closing answers requests in flight as aborted (not an attempt) and stops the thread', async (t) => {
  const rx = await startReceiver();
  t.after(() => rx.close());
  rx.handle(() => 'hang');
  const threaded = new ThreadedWebhookSender({ ...opts, timeoutMs: 30_000 }, 1, createLogger('silent'));
  const pending = threaded.send(`${rx.url}/hang`, {}, '{}');
  await new Promise((r) => setTimeout(r, 200));
  await threaded.close();
  const r = await pending;
  assert.equal(r.aborted, true);
  assert.equal(r.status, null);
});
