import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { MemoryBroker } from '../../src/brokers/memory-broker.js';
import { buildConfig } from '../../src/config/load.js';
import { HeraldError } from '../../src/core/errors.js';
import { toEventInput } from '../../src/core/event.js';
import { Hub } from '../../src/core/hub.js';
import { TYPE_MAX_BYTES } from '../../src/core/limits.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { MemoryEventStore } from '../../src/stores/memory-event-store.js';
import type { WebhookVerifier } from '../../src/transports/webhook-in/verifier.js';
import { WebhookReceiver, type Source } from '../../src/transports/webhook-in/webhook-receiver.js';

/*
 * One trust line: whatever type a provider's payload maps to, the inbound receiver stores it only
 * when the publish API would, so no door lets in an event the others refuse (an empty type reads
 * as `message` in an SSE `event:` line, and used to pass here while a publish refused it).
 */

const store = new MemoryEventStore();
const hub = new Hub({ store, broker: new MemoryBroker() });
const receiver = new WebhookReceiver({ hub, inbound: store, log: createLogger('silent'), metrics: new Metrics(), sources: {} });
after(() => hub.close());

/** A provider that names its event type itself: the type under test, whatever it is. */
function providerSending(type: string): Source {
  const verifier: WebhookVerifier = { auditHeaders: [], verify: () => ({ id: undefined, type, payload: { n: 1 }, signedDigest: undefined }) };
  const config = buildConfig({ sources: { erp: { provider: 'none', channel: 'erp' } } }).sources.erp!;
  return { name: 'erp', config, verifier };
}

async function publishRefuses(type: string): Promise<boolean> {
  try {
    toEventInput({ channel: 'erp', type, data: { n: 1 } });
    return false;
  } catch (err) {
    assert.ok(err instanceof HeraldError && err.code === 'TYPE_INVALID', `publish: ${String(err)}`);
    return true;
  }
}

async function inboundRefuses(type: string): Promise<boolean> {
  const before = (await store.head()).lastSeq;
  try {
    await receiver.receive(providerSending(type), Buffer.from('{"n":1}'), { 'content-type': 'application/json' });
    return false;
  } catch (err) {
    assert.ok(err instanceof HeraldError && err.code === 'WEBHOOK_PAYLOAD_INVALID', `inbound: ${String(err)}`);
    assert.equal((await store.head()).lastSeq, before, 'a refused inbound webhook appended an event');
    return true;
  }
}

const cases: Array<[string, string]> = [
  ['an empty type', ''],
  ['a type one byte too long', 'x'.repeat(TYPE_MAX_BYTES + 1)],
  ['a type with a tab', 'order\tpaid'],
  ['a type with DEL', 'order\u007fpaid'],
  ['a type with CR LF', 'order\r\nid: 999'],
  ['the longest type', 'y'.repeat(TYPE_MAX_BYTES)],
  ['an ordinary type', 'order.paid'],
];

for (const [what, type] of cases) {
  test(`an inbound webhook with ${what} is refused or stored exactly as a publish with it`, async () => {
    const refused = await publishRefuses(type);
    assert.equal(await inboundRefuses(type), refused, refused ? 'the publish API refuses it, the receiver stored it' : 'the publish API takes it, the receiver refused it');
  });
}

test('the cases cover both outcomes', async () => {
  const outcomes = new Set(await Promise.all(cases.map(([, t]) => publishRefuses(t))));
  assert.deepEqual([...outcomes].sort(), [false, true]);
});
