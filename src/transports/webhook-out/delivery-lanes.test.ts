import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deliveryRecord, endpointRecord } from '../../../test/helpers/outbound-doubles.js';
import { DeliveryLanes, READY_MAX, READY_MAX_BYTES, READY_PER_SLOT, REFILL_FRACTION } from './delivery-lanes.js';

const limits = { concurrency: 10, endpointConcurrency: 4 };

test('an ordered endpoint has one slot and no waiting room; a parallel one has slots and a waiting room per slot', () => {
  const lanes = new DeliveryLanes(limits);
  const ordered = endpointRecord({ id: 'o', ordering: 'ordered', maxConcurrency: 7 });
  const parallel = endpointRecord({ id: 'p' });
  const own = endpointRecord({ id: 'q', maxConcurrency: 2 });
  assert.equal(lanes.limit(ordered), 1);
  assert.equal(lanes.capacity(ordered), 1);
  assert.equal(lanes.limit(parallel), 4);
  assert.equal(lanes.capacity(parallel), 4 * (1 + READY_PER_SLOT));
  assert.equal(lanes.capacity(own), 2 * (1 + READY_PER_SLOT));
});

test('a fresh delivery finds room only while its lane and the node are under their bounds', () => {
  const lanes = new DeliveryLanes(limits);
  const e = endpointRecord({ id: 'p', maxConcurrency: 1 });
  const cap = lanes.capacity(e);
  for (let i = 0; i < cap - 1; i++) lanes.reserve(e.id, 10);
  assert.equal(lanes.hasRoom(e, 10), true);
  lanes.enqueue(deliveryRecord({ endpointId: e.id }));
  assert.equal(lanes.used(e.id), cap);
  assert.equal(lanes.hasRoom(e, 10), false, 'the lane is full');
  // Another endpoint, with an empty lane, is refused once the node's bytes are spoken for.
  const other = endpointRecord({ id: 'x' });
  assert.equal(lanes.hasRoom(other, READY_MAX_BYTES), false);
  assert.equal(lanes.hasRoom(other, 1_000), true);
  lanes.unreserve(e.id, 10);
  assert.equal(lanes.hasRoom(e, 10), true, 'an unreserved place is free again');
});

test('the node holds at most READY_MAX deliveries in memory, over every endpoint', () => {
  const lanes = new DeliveryLanes({ concurrency: 10, endpointConcurrency: READY_MAX });
  const e = endpointRecord({ id: 'p' });
  for (let i = 0; i < READY_MAX; i++) lanes.reserve(e.id, 0);
  assert.equal(lanes.held, READY_MAX);
  assert.equal(lanes.hasRoom(endpointRecord({ id: 'q' }), 0), false);
  assert.equal(lanes.budget().count, 10, 'only the free slots are left to claim for');
});

test('a lane is topped up by a claim only once REFILL_FRACTION of it is free', () => {
  const lanes = new DeliveryLanes(limits);
  const e = endpointRecord({ id: 'p', maxConcurrency: 4 });
  const cap = lanes.capacity(e);
  assert.equal(lanes.claimRoom(e), cap, 'an empty lane asks for all of its room');
  const threshold = Math.ceil(cap * REFILL_FRACTION);
  for (let i = 0; i < cap - threshold + 1; i++) lanes.enqueue(deliveryRecord({ endpointId: e.id }));
  assert.equal(lanes.claimRoom(e), 0, 'less than the refill share is free');
  lanes.take(e.id);
  assert.equal(lanes.claimRoom(e), threshold);
});

test('endpoints with deliveries waiting are served in turn: one still waiting goes to the back of the line', () => {
  const lanes = new DeliveryLanes(limits);
  for (const id of ['a', 'b', 'c']) {
    lanes.enqueue(deliveryRecord({ endpointId: id }));
    lanes.enqueue(deliveryRecord({ endpointId: id }));
  }
  assert.deepEqual(lanes.serveOrder(), ['a', 'b', 'c']);
  lanes.take('a');
  lanes.served('a');
  assert.deepEqual(lanes.serveOrder(), ['b', 'c', 'a']);
  lanes.takeAll('b');
  lanes.served('b');
  assert.deepEqual(lanes.serveOrder(), ['c', 'a'], 'an endpoint with nothing waiting leaves the line');
});

test('slots are counted per endpoint and on the node', () => {
  const lanes = new DeliveryLanes({ concurrency: 2, endpointConcurrency: 4 });
  lanes.occupy('a');
  assert.equal(lanes.full, false);
  lanes.occupy('b');
  assert.equal(lanes.full, true);
  assert.equal(lanes.inFlight, 2);
  assert.equal(lanes.lane('a').inflight, 1);
  lanes.vacate('a');
  assert.equal(lanes.full, false);
  assert.equal(lanes.lane('a').inflight, 0);
});

test('drain takes every waiting delivery out and frees what it held', () => {
  const lanes = new DeliveryLanes(limits);
  lanes.enqueue(deliveryRecord({ endpointId: 'a', body: 'xxxx' }));
  lanes.enqueue(deliveryRecord({ endpointId: 'b', body: 'yy' }));
  const out = lanes.drain();
  assert.equal(out.length, 2);
  assert.equal(lanes.held, 0);
  assert.deepEqual(lanes.serveOrder(), []);
  assert.equal(lanes.budget().bytes, READY_MAX_BYTES);
});
