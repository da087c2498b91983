import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deliveryRecord, recordingLog, sendResult } from '../../../test/helpers/outbound-doubles.js';
import type { EndpointRecord } from '../../core/delivery-store.js';
import { EndpointRegistry } from './endpoint-registry.js';
import { MemoryDeliveryStore } from '../../stores/memory-delivery-store.js';
import { OutcomePolicy } from './outcome-policy.js';
import { RetrySchedule } from './retry-policy.js';

/** A policy over a real registry and memory store; the clock is the `end` each test passes. */
async function setup(over: { schedule?: number[]; failures?: number; disableAfterMs?: number } = {}) {
  let clock = 1_000_000;
  const store = new MemoryDeliveryStore();
  const registry = new EndpointRegistry({ store, now: () => clock, rotationOverlapMs: 0 });
  const input = { url: 'https://receiver.example/', channels: ['orders'], types: null, description: '', headers: {}, ordering: 'parallel' as const, maxConcurrency: null };
  const e = await registry.create(input, 0);
  const disabled: EndpointRecord[] = [];
  const { log, lines } = recordingLog();
  const policy = new OutcomePolicy({
    registry,
    // No jitter: the random source always answers the middle.
    schedule: new RetrySchedule(over.schedule ?? [0, 10, 60], 0.5, () => 0.5),
    log,
    maxRetryAfterMs: 30_000,
    disableAfterFailingMs: over.disableAfterMs ?? 3_600_000,
    breakerFailures: over.failures ?? 100,
    breakerCooldownMs: 5_000,
    onDisabled: (x) => disabled.push(x),
  });
  return { store, registry, e, policy, disabled, lines, at: (ms: number) => (clock = ms) };
}

test('a 2xx answer is delivered and makes a failing endpoint healthy again', async () => {
  const { registry, e, policy } = await setup();
  await policy.decide(e, deliveryRecord({ endpointId: e.id }), sendResult(500), 2_000_000);
  assert.equal(registry.get(e.id)!.failingSince, 2_000_000);
  const outcome = await policy.decide(e, deliveryRecord({ endpointId: e.id, attempts: 1 }), sendResult(204), 2_000_500);
  assert.deepEqual(outcome, { status: 'delivered' });
  assert.equal(registry.get(e.id)!.failingSince, null);
});

test('a failure is due again after the next delay of the schedule, counted from the end of the answer', async () => {
  const { e, policy } = await setup();
  assert.deepEqual(await policy.decide(e, deliveryRecord({ endpointId: e.id, attempts: 0 }), sendResult(500), 5_000_000), {
    status: 'pending',
    nextAt: 5_000_000 + 10_000,
  });
  // A manual retry restarts the schedule: attempts before it do not count.
  assert.deepEqual(await policy.decide(e, deliveryRecord({ endpointId: e.id, attempts: 5, scheduleStart: 4 }), sendResult(null), 5_000_000), {
    status: 'pending',
    nextAt: 5_000_000 + 60_000,
  });
});

test('a spent schedule makes the delivery dead', async () => {
  const { e, policy } = await setup({ schedule: [0, 1] });
  assert.deepEqual(await policy.decide(e, deliveryRecord({ endpointId: e.id, attempts: 1 }), sendResult(502), 3_000_000), { status: 'dead' });
});

test('Retry-After is honoured for 429 and 503 only, and never beyond its bound', async () => {
  const { e, policy } = await setup();
  const d = deliveryRecord({ endpointId: e.id });
  assert.deepEqual(await policy.decide(e, d, sendResult(429, { retryAfterMs: 2_000 }), 0), { status: 'pending', nextAt: 2_000 });
  assert.deepEqual(await policy.decide(e, d, sendResult(503, { retryAfterMs: 86_400_000 }), 0), { status: 'pending', nextAt: 30_000 });
  assert.deepEqual(await policy.decide(e, d, sendResult(500, { retryAfterMs: 2_000 }), 0), { status: 'pending', nextAt: 10_000 });
});

test('410 Gone disables the endpoint, holds its deliveries and says so once', async () => {
  const { store, registry, e, policy, disabled, lines } = await setup();
  await store.enqueue([{ endpointId: e.id, eventSeq: 1, msgId: 'm1', body: '{}', status: 'pending', nextAt: 0, createdAt: 0 }]);
  assert.deepEqual(await policy.decide(e, deliveryRecord({ endpointId: e.id }), sendResult(410), 1_000), { status: 'held' });
  assert.equal(registry.get(e.id)!.enabled, false);
  assert.equal(registry.get(e.id)!.disabledReason, 'gone');
  assert.equal((await store.listDeliveries(e.id, { limit: 10 }))[0]!.status, 'held');
  assert.deepEqual(
    disabled.map((x) => x.disabledReason),
    ['gone'],
  );
  assert.ok(lines.some((l) => l.msg === 'outbound webhooks: endpoint disabled'));
  // Any later failure of a request already in flight is held too, without a second announcement.
  assert.deepEqual(await policy.decide(e, deliveryRecord({ endpointId: e.id }), sendResult(500), 2_000), { status: 'held' });
  assert.equal(disabled.length, 1);
});

test('an endpoint failing for longer than the bound is disabled as failing', async () => {
  const { registry, e, policy, disabled } = await setup({ disableAfterMs: 60_000 });
  const d = deliveryRecord({ endpointId: e.id });
  assert.equal((await policy.decide(e, d, sendResult(500), 100_000)).status, 'pending');
  assert.equal((await policy.decide(e, d, sendResult(500), 159_999)).status, 'pending');
  assert.deepEqual(await policy.decide(e, d, sendResult(500), 160_000), { status: 'held' });
  assert.equal(registry.get(e.id)!.disabledReason, 'failing');
  assert.equal(disabled.length, 1);
});

test('consecutive failures open the circuit; after the cool-down one probe may go', async () => {
  const { e, policy } = await setup({ failures: 3 });
  const d = deliveryRecord({ endpointId: e.id });
  for (let i = 0; i < 2; i++) await policy.decide(e, d, sendResult(500), 10_000);
  assert.equal(policy.circuit(e.id, 10_000), 'closed');
  await policy.decide(e, d, sendResult(500), 10_000);
  assert.equal(policy.circuit(e.id, 10_001), 'open');
  assert.equal(policy.breaker(e.id).reopensAt, 15_000);
  assert.equal(policy.circuit(e.id, 15_000), 'half-open');
  assert.equal(policy.breaker(e.id).allowance(15_000, 5), 1);
  await policy.decide(e, d, sendResult(200), 15_100);
  assert.equal(policy.circuit(e.id, 15_100), 'closed');
  assert.equal(policy.circuit('never-seen', 0), 'closed');
});
