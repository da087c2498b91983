import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryBroker } from '../../src/brokers/memory-broker.js';
import type { Broker } from '../../src/core/broker.js';
import type { StoredEvent } from '../../src/core/event.js';
import { openEventSource } from '../helpers/clients.js';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';

/** The in-process broker, failing every publish while `down` (a broker connection that broke). */
class FlakyBroker implements Broker {
  down = false;
  readonly #inner = new MemoryBroker();
  publish(events: readonly StoredEvent[]): Promise<void> {
    return this.down ? Promise.reject(new Error('broker connection refused')) : this.#inner.publish(events);
  }
  onEvents(handler: (events: readonly StoredEvent[]) => void): void {
    this.#inner.onEvents(handler);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

/**
 * Other nodes hear of an event only through the broker. A failure used to be swallowed: the
 * node looked ready and kept accepting publishes nobody else would hear of. Now the event that
 * was stored stays acknowledged, and the node says it is not ready and refuses publishes (503,
 * nothing stored) until the broker works again.
 */
test('a broker outage makes /readyz 503 and publishes 503 until the broker is back; stored events stay acknowledged', async (t) => {
  const broker = new FlakyBroker();
  const h = await startInProcess({ store: { type: 'memory' } }, { parts: { broker } });
  t.after(() => h.close());
  const ready = async () => {
    const res = await fetch(`${h.url}/readyz`);
    return { status: res.status, body: (await res.json()) as unknown };
  };
  assert.deepEqual(await ready(), { status: 200, body: { status: 'ready' } });
  const es = openEventSource(`${h.url}/v1/stream?channel=outage`);
  t.after(() => es.close());
  await waitFor(() => es.opens > 0, 5_000, 'the stream to open');

  broker.down = true;
  const stored = await postJson(`${h.url}/v1/publish`, { channel: 'outage', data: 'stored' });
  assert.equal(stored.status, 201, 'the event is in the log: acknowledged');
  await es.until(1);
  assert.deepEqual(es.messages[0], { type: 'message', data: 'stored', lastEventId: stored.json.id });

  assert.deepEqual(await ready(), { status: 503, body: { status: 'broker_not_ready', checks: { broker: 'unavailable' } } });
  const refused = await postJson(`${h.url}/v1/publish`, { channel: 'outage', data: 'refused' });
  assert.equal(refused.status, 503);
  assert.equal(refused.json.error.code, 'BROKER_UNAVAILABLE');
  const history = (await (await fetch(`${h.url}/v1/events?channel=outage&after=0`)).json()) as { events: { data: string }[] };
  assert.deepEqual(history.events.map((e) => e.data), ['stored'], 'a refused publish stored nothing');
  const metrics = await (await fetch(`${h.url}/metrics`)).text();
  assert.match(metrics, /^herald_broker_failures_total [1-9]/m);

  broker.down = false;
  await waitFor(async () => (await ready()).status === 200, 10_000, '/readyz to be ready again');
  const after = await postJson(`${h.url}/v1/publish`, { channel: 'outage', data: 'after' });
  assert.equal(after.status, 201);
  await es.until(2);
  assert.deepEqual(es.messages.map((m) => m.data), ['stored', 'after']);
});
