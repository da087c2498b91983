import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { spawnHerald, waitFor } from '../helpers/herald.js';

/** A loopback port nothing listens on: bound, then closed again. No Kafka is started. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('with no Kafka broker at the configured address, the log says so plainly and /readyz waits', async (t) => {
  const broker = `127.0.0.1:${await closedPort()}`;
  const h = await spawnHerald({
    kafka: { brokers: [broker], groupId: 'herald', topics: [{ topic: 'orders', channel: 'orders' }] },
  });
  t.after(() => h.kill());
  const line = (await waitFor(
    () => h.logs.find((l) => l.component === 'kafka' && l.level === 40),
    60_000,
    'the warning of the failed Kafka connection',
  ))!;
  assert.equal(
    line.msg,
    `kafka: no Kafka broker reachable at ${broker} (ECONNREFUSED): is the broker running, and does kafka.brokers name its address?; reconnecting`,
  );
  assert.ok(line.err, 'the client error is still logged in full beside it');
  const ready = await fetch(`${h.url}/readyz`);
  assert.equal(ready.status, 503);
  const { checks } = (await ready.json()) as { checks: Record<string, string> };
  assert.match(checks.kafka!, /^(connecting|reconnecting)$/);
});
