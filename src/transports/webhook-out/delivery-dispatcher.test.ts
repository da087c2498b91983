import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeSender, recordingLog, sendResult } from '../../../test/helpers/outbound-doubles.js';
import { DeliveryDispatcher } from './delivery-dispatcher.js';
import type { Delivery, FinishedAttempt, NewDelivery } from '../../core/delivery-store.js';
import { EndpointRegistry } from './endpoint-registry.js';
import { MemoryDeliveryStore } from '../../stores/memory-delivery-store.js';
import { RetrySchedule } from './retry-policy.js';

/** A dispatcher over a real memory store, with a sender that answers when the test says. */
async function setup() {
  const now = () => 1_000_000;
  const store = new MemoryDeliveryStore();
  let claims = 0;
  const claim = store.claim.bind(store);
  store.claim = (...args) => {
    claims++;
    return claim(...args);
  };
  const registry = new EndpointRegistry({ store, now, rotationOverlapMs: 0 });
  const input = { url: 'https://receiver.example/', channels: ['orders'], types: null, description: '', headers: {}, ordering: 'parallel' as const, maxConcurrency: null };
  const e = await registry.create(input, 0);
  const sender = new FakeSender();
  const attempts: { delivery: Delivery; attempt: FinishedAttempt }[] = [];
  let attempted: () => void = () => {};
  const d = new DeliveryDispatcher({
    store,
    registry,
    sender,
    schedule: new RetrySchedule([0, 60], 0),
    log: recordingLog().log,
    now,
    owner: 'node-1',
    concurrency: 8,
    endpointConcurrency: 2,
    leaseMs: 30_000,
    requestTimeoutMs: 10_000,
    sweepIntervalMs: 60_000,
    maxRetryAfterMs: 60_000,
    disableAfterFailingMs: 3_600_000,
    breakerFailures: 5,
    breakerCooldownMs: 1_000,
    onDisabled: () => {},
    onAttempt: (delivery, attempt) => {
      attempts.push({ delivery, attempt });
      attempted();
    },
  });
  const row = (seq: number): NewDelivery => ({ endpointId: e.id, eventSeq: seq, msgId: `m${seq}`, body: '{}', status: 'pending', nextAt: now(), createdAt: now() });
  const recorded = async (n: number) => {
    while (attempts.length < n) await new Promise<void>((r) => (attempted = r));
  };
  /** Resolves once the first claim after start() is answered (the endpoint is then known caught up). */
  const settled = async () => {
    while (claims === 0) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
  };
  return { store, registry, e, sender, dispatcher: d, row, attempts, recorded, settled, claims: () => claims };
}

test('a handed-over delivery of a caught-up endpoint is stored leased and sent without a claim', async () => {
  const { store, sender, dispatcher, row, attempts, recorded, settled, claims } = await setup();
  dispatcher.start();
  await settled();
  const before = claims();
  await dispatcher.handOver([row(1)], 1, 1_000_000);
  assert.equal(await store.plannedThrough(), 1, 'the planning cursor moved with the rows');
  await sender.made(1);
  assert.equal(claims(), before, 'the fast path costs no claim');
  sender.requests[0]!.answer(sendResult(200));
  await recorded(1);
  assert.equal(attempts[0]!.delivery.leaseOwner, 'node-1');
  assert.equal(attempts[0]!.delivery.claims, 1);
  assert.equal(attempts[0]!.attempt.outcome.status, 'delivered');
  await dispatcher.close(1_000);
});

test('rows stored unleased are found by a claim and sent', async () => {
  const { sender, dispatcher, row, recorded, attempts } = await setup();
  // Not started: no claim has found the endpoint caught up, so nothing takes the fast path.
  await dispatcher.handOver([row(1), row(2)], 2, 1_000_000);
  dispatcher.start();
  await sender.made(2);
  for (const r of sender.requests) r.answer(sendResult(200));
  await recorded(2);
  assert.deepEqual(attempts.map((a) => a.delivery.eventSeq).sort(), [1, 2]);
  await dispatcher.close(1_000);
});

test('when the store refuses the rows, the hand-over fails and the places it reserved are free again', async () => {
  const { store, sender, dispatcher, row, settled } = await setup();
  dispatcher.start();
  await settled();
  const enqueue = store.enqueue.bind(store);
  store.enqueue = () => Promise.reject(new Error('disk full'));
  await assert.rejects(dispatcher.handOver([row(1), row(2)], 2, 1_000_000), /disk full/);
  assert.equal(dispatcher.waiting, 0);
  assert.equal(await store.plannedThrough(), undefined);
  store.enqueue = enqueue;
  await dispatcher.handOver([row(3)], 3, 1_000_000);
  await sender.made(1);
  assert.equal(sender.requests.length, 1);
  await dispatcher.close(0);
});

test('close gives the requests in flight back, without an attempt, once the drain time is over', async () => {
  const { store, e, sender, dispatcher, row, settled, attempts } = await setup();
  dispatcher.start();
  await settled();
  await dispatcher.handOver([row(1)], 1, 1_000_000);
  await sender.made(1);
  await dispatcher.close(0);
  assert.equal(attempts.length, 0);
  const [d] = await store.listDeliveries(e.id, { limit: 1 });
  assert.equal(d!.status, 'pending');
  assert.equal(d!.attempts, 0);
  assert.equal(d!.leaseOwner, null, 'the lease was given back');
});
