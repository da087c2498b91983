import { Consumer } from '@platformatic/kafka';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { describeKafkaFailure } from './kafka-failure.js';

/** A loopback port nothing listens on: bound, then closed again. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** What the real client throws when it joins a group with no broker at `broker`. */
async function joinFailure(broker: string): Promise<unknown> {
  const consumer = new Consumer({
    clientId: 'herald-test',
    bootstrapBrokers: [broker],
    groupId: 'herald-test',
    retries: 1,
    retryDelay: 10,
    connectTimeout: 5_000,
  });
  try {
    await consumer.consume({ topics: ['orders'], mode: 'committed', autocommit: false });
  } catch (err) {
    return err;
  } finally {
    await new Promise<void>((resolve) => consumer.close(true, () => resolve()));
  }
  assert.fail('the consumer joined a group with no broker');
}

describe('Kafka failures in words an operator acts on', () => {
  test('no broker listening: says so, with the address and the system error, not only "findGroupCoordinator failed"', async () => {
    const broker = `127.0.0.1:${await closedPort()}`;
    const err = await joinFailure(broker);
    assert.match((err as Error).message, /findGroupCoordinator failed/, 'the client still reports it this way');
    assert.equal(
      describeKafkaFailure(err, [broker]),
      `no Kafka broker reachable at ${broker} (ECONNREFUSED): is the broker running, and does kafka.brokers name its address?`,
    );
  });

  test('a connection error without a system code (a connect timeout) is a broker out of reach too', () => {
    const timeout = Object.assign(new Error('Connection to 10.0.0.9:9092 failed.'), {
      code: 'PLT_KFK_NETWORK',
      cause: new Error('Connection timeout.'),
    });
    const err = new AggregateError([new AggregateError([timeout], 'Cannot connect to any broker.')], 'metadata failed 4 times.');
    assert.equal(
      describeKafkaFailure(err, ['10.0.0.9:9092', '10.0.0.10:9092']),
      'no Kafka broker reachable at 10.0.0.9:9092, 10.0.0.10:9092: is the broker running, and does kafka.brokers name its address?',
    );
  });

  test('a consumed topic the broker does not have is named, with what to do', () => {
    // As the client reports it: a UserError from its metadata request.
    const err = Object.assign(new Error('Unknown topic orders.'), { name: 'UserError' });
    const expected = 'topic "orders" does not exist on the broker: create it, or set kafka.createTopics for a broker that creates topics on request';
    assert.equal(describeKafkaFailure(err, ['k:9092']), expected);
    assert.equal(describeKafkaFailure(new AggregateError([err], 'metadata failed 4 times.'), ['k:9092']), expected);
  });

  test('any other cause keeps the client message and adds the distinct innermost causes', () => {
    const tls = Object.assign(new Error('Connection to k:9093 failed.'), {
      code: 'PLT_KFK_NETWORK',
      cause: Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }),
    });
    const err = new AggregateError([tls, tls], 'findGroupCoordinator failed 2 times.');
    assert.equal(
      describeKafkaFailure(err, ['k:9093']),
      'findGroupCoordinator failed 2 times.: self-signed certificate in certificate chain',
    );
    assert.equal(describeKafkaFailure(new Error('SASL authentication failed'), ['k:9093']), 'SASL authentication failed');
    assert.equal(describeKafkaFailure('plain text', ['k:9093']), 'plain text');
  });

  test('a deep or looping error tree gives a bounded message', () => {
    const loop: { message: string; cause?: unknown } = { message: 'x'.repeat(1_000) };
    loop.cause = loop;
    const text = describeKafkaFailure(loop, ['k:9092']);
    assert.ok(text.length <= 303, `${text.length} characters`);
  });
});
