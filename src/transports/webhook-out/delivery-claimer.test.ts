import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { recordingLog } from '../../../test/helpers/outbound-doubles.js';
import { DeliveryClaimer, DueTimer } from './delivery-claimer.js';
import { DeliveryLanes } from './delivery-lanes.js';
import type { ClaimRequest, EndpointRecord, NewDelivery } from '../../core/delivery-store.js';
import { EndpointRegistry } from './endpoint-registry.js';
import { MemoryDeliveryStore } from '../../stores/memory-delivery-store.js';
import { OutcomePolicy } from './outcome-policy.js';
import { RetrySchedule } from './retry-policy.js';

const LEASE_MS = 30_000;

/** A claimer over a real memory store and registry; the clock is a number the test moves. */
async function setup(count = 2) {
  let clock = 1_000_000;
  const store = new MemoryDeliveryStore();
  const requests: ClaimRequest[][] = [];
  const claim = store.claim.bind(store);
  store.claim = (reqs, ...rest) => {
    requests.push([...reqs]);
    return claim(reqs, ...rest);
  };
  const registry = new EndpointRegistry({ store, now: () => clock, rotationOverlapMs: 0 });
  const endpoints: EndpointRecord[] = [];
  for (let i = 0; i < count; i++) {
    const input = { url: 'https://receiver.example/', channels: ['orders'], types: null, description: '', headers: {}, ordering: 'parallel' as const, maxConcurrency: 1 };
    endpoints.push(await registry.create(input, 0));
  }
  const lanes = new DeliveryLanes({ concurrency: 10, endpointConcurrency: 4 });
  const policy = new OutcomePolicy({
    registry,
    schedule: new RetrySchedule([0, 1], 0),
    log: recordingLog().log,
    maxRetryAfterMs: 1_000,
    disableAfterFailingMs: 3_600_000,
    breakerFailures: 2,
    breakerCooldownMs: 60_000,
    onDisabled: () => {},
  });
  let dues = 0;
  const timer = new DueTimer(() => clock, () => dues++);
  const claimer = new DeliveryClaimer({ store, registry, lanes, policy, timer, owner: 'me', leaseMs: LEASE_MS });
  const row = (e: EndpointRecord, nextAt = clock): NewDelivery => ({ endpointId: e.id, eventSeq: 1, msgId: 'm', body: '{}', status: 'pending', nextAt, createdAt: clock });
  return { store, requests, endpoints, lanes, policy, timer, claimer, row, now: () => clock, set: (t: number) => (clock = t), dues: () => dues };
}

test('a fresh delivery is leased on the fast path only once a claim found nothing more of its endpoint due', async () => {
  const { endpoints, claimer, now } = await setup(1);
  const e = endpoints[0]!;
  assert.equal(claimer.leaseFresh(e, now(), 2, now()), undefined, 'not known to be caught up yet');
  assert.deepEqual(await claimer.claim(now()), []);
  assert.deepEqual(claimer.leaseFresh(e, now(), 2, now()), { owner: 'me', until: now() + LEASE_MS });
  assert.equal(claimer.leaseFresh(e, now() + 1, 2, now()), undefined, 'a delivery not yet due waits in the store');
  // The refusal itself took the endpoint off the fast path: the next claim must look for it.
  assert.equal(claimer.leaseFresh(e, now(), 2, now()), undefined);
});

test('a lease given back, or anything outside, takes an endpoint off the fast path', async () => {
  const { endpoints, claimer, now } = await setup(2);
  const [a, b] = endpoints as [EndpointRecord, EndpointRecord];
  await claimer.claim(now());
  claimer.behind(a.id);
  assert.equal(claimer.leaseFresh(a, now(), 2, now()), undefined);
  assert.ok(claimer.leaseFresh(b, now(), 2, now()));
  claimer.forgetAll();
  assert.equal(claimer.leaseFresh(b, now(), 2, now()), undefined);
});

test('claims skip caught-up endpoints and ask each other one for the room in its lane', async () => {
  const { store, requests, endpoints, lanes, claimer, row, now } = await setup(2);
  const [a, b] = endpoints as [EndpointRecord, EndpointRecord];
  await store.enqueue([row(a), row(a), row(b)]);
  const claimed = await claimer.claim(now());
  assert.equal(claimed.length, 3);
  assert.deepEqual(
    requests[0]!.map((r) => [r.endpointId, r.limit]),
    [
      [a.id, lanes.capacity(a)],
      [b.id, lanes.capacity(b)],
    ],
  );
  // Both came back short: both are caught up, and the next claim asks the store nothing.
  assert.deepEqual(await claimer.claim(now()), []);
  assert.equal(requests.length, 1);
});

test('a wake-up during a claim is not lost: the endpoint is not taken for caught up on a stale answer', async () => {
  const { endpoints, claimer, now } = await setup(1);
  const e = endpoints[0]!;
  const claiming = claimer.claim(now());
  claimer.forgetAll(); // a retry was stored while the claim was in the store
  await claiming;
  assert.equal(claimer.leaseFresh(e, now(), 2, now()), undefined);
});

test('an open circuit is not claimed for, and the timer is armed for its probe', async () => {
  const { store, requests, endpoints, policy, timer, claimer, row, now } = await setup(2);
  const [a, b] = endpoints as [EndpointRecord, EndpointRecord];
  policy.breaker(a.id).failed(now());
  policy.breaker(a.id).failed(now());
  await store.enqueue([row(a)]);
  assert.deepEqual(await claimer.claim(now()), []);
  assert.deepEqual(
    requests[0]!.map((r) => r.endpointId),
    [b.id],
  );
  assert.equal(timer.at, now() + 60_000);
  timer.stop();
});

test('the timer is armed for the earliest delivery due later, and fires once then', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const { store, endpoints, timer, claimer, row, now, dues } = await setup(1);
    const e = endpoints[0]!;
    await store.enqueue([row(e, now() + 5_000), row(e, now() + 2_000)]);
    assert.deepEqual(await claimer.claim(now()), []);
    assert.equal(timer.at, now() + 2_000);
    timer.arm(now() + 3_000); // a later time never pushes back an earlier one
    assert.equal(timer.at, now() + 2_000);
    mock.timers.tick(1_999);
    assert.equal(dues(), 0);
    mock.timers.tick(1);
    assert.equal(dues(), 1);
    assert.equal(timer.at, Infinity);
  } finally {
    mock.timers.reset();
  }
});

test('a lane too full to be topped up is not claimed for', async () => {
  const { store, requests, endpoints, lanes, claimer, row, now } = await setup(1);
  const e = endpoints[0]!;
  for (let i = 0; i < lanes.capacity(e); i++) lanes.reserve(e.id, 0);
  await store.enqueue([row(e)]);
  assert.deepEqual(await claimer.claim(now()), []);
  assert.equal(requests.length, 0);
});
