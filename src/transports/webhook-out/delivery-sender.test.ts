import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeSender, deliveryRecord, sendResult } from '../../../test/helpers/outbound-doubles.js';
import { DeliverySender, USER_AGENT } from './delivery-sender.js';
import { EndpointRegistry } from './endpoint-registry.js';
import { MemoryDeliveryStore } from '../../stores/memory-delivery-store.js';
import { signatureHeader } from './signer.js';

async function setup(headers: Record<string, string> = {}) {
  let clock = 1_700_000_000_123;
  const registry = new EndpointRegistry({ store: new MemoryDeliveryStore(), now: () => clock, rotationOverlapMs: 60_000 });
  const input = { url: 'https://receiver.example/hook', channels: ['orders'], types: null, description: '', headers, ordering: 'parallel' as const, maxConcurrency: null };
  const e = await registry.create(input, 0);
  const fake = new FakeSender();
  const sender = new DeliverySender({ registry, sender: fake, now: () => clock });
  return { registry, e, fake, sender, tick: (ms: number) => (clock += ms), now: () => clock };
}

test('a delivery is sent as one signed request: its body, its webhook-id, the clock as timestamp', async () => {
  const { e, fake, sender, now } = await setup({ 'x-tenant': 't1' });
  const d = deliveryRecord({ endpointId: e.id, msgId: 'msg_log_7', body: '{"id":"7"}' });
  const at = now();
  const sending = sender.send(d);
  await fake.made(1);
  const r = fake.requests[0]!;
  assert.equal(r.url, e.url);
  assert.equal(r.body, '{"id":"7"}');
  assert.equal(r.headers['x-tenant'], 't1');
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.headers['user-agent'], USER_AGENT);
  assert.equal(r.headers['webhook-id'], 'msg_log_7');
  assert.equal(r.headers['webhook-timestamp'], String(Math.floor(at / 1000)));
  assert.equal(r.headers['webhook-signature'], signatureHeader('msg_log_7', Math.floor(at / 1000), '{"id":"7"}', [e.secret]));
  r.answer(sendResult(200, { durationMs: 12 }));
  const sent = await sending;
  assert.ok(sent);
  assert.equal(sent.at, at, 'the attempt is dated when the request started');
  assert.equal(sent.endpoint.id, e.id);
  assert.equal(sent.response.status, 200);
});

test('during a secret rotation both secrets sign, until the overlap ends', async () => {
  const { registry, e, fake, sender, tick } = await setup();
  const rotated = await registry.rotateSecret(e.id);
  void sender.send(deliveryRecord({ endpointId: e.id }));
  await fake.made(1);
  assert.equal(fake.requests[0]!.headers['webhook-signature']!.split(' ').length, 2);
  assert.equal(rotated.previousSecret, e.secret);
  tick(60_000);
  void sender.send(deliveryRecord({ endpointId: e.id }));
  await fake.made(2);
  assert.equal(fake.requests[1]!.headers['webhook-signature']!.split(' ').length, 1);
  await fake.close();
});

test('no request is made for a disabled or deleted endpoint', async () => {
  const { registry, e, fake, sender } = await setup();
  await registry.update(e.id, { enabled: false });
  assert.equal(await sender.send(deliveryRecord({ endpointId: e.id })), undefined);
  assert.equal(await sender.send(deliveryRecord({ endpointId: 'ep_gone' })), undefined);
  assert.equal(fake.requests.length, 0);
});

test('a request aborted by close is no attempt', async () => {
  const { e, fake, sender } = await setup();
  const sending = sender.send(deliveryRecord({ endpointId: e.id }));
  await fake.made(1);
  await sender.close();
  assert.equal(fake.closed, true);
  assert.equal(await sending, undefined);
});
