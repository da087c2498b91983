import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLoopback } from '../../src/http/client-address.js';
import { startInProcess } from '../helpers/herald.js';

test('with no auth configured, publishing from a non-loopback address is refused (403 LOOPBACK_ONLY)', async () => {
  const h = await startInProcess();
  try {
    const payload = JSON.stringify({ channel: 'x', data: 1 });
    for (const remoteAddress of ['203.0.113.7', '10.0.0.5', '::ffff:192.168.1.2', '2001:db8::1']) {
      const res = await h.herald.app.inject({ method: 'POST', url: '/v1/publish', payload, remoteAddress, headers: { 'content-type': 'application/json' } });
      assert.equal(res.statusCode, 403, remoteAddress);
      assert.equal(res.json().error.code, 'LOOPBACK_ONLY');
    }
    const local = await h.herald.app.inject({ method: 'POST', url: '/v1/publish', payload, remoteAddress: '127.0.0.1', headers: { 'content-type': 'application/json' } });
    assert.equal(local.statusCode, 201);
    // subscriptions and the seed routes stay open to everyone, as in the original example
    const seed = await h.herald.app.inject({ method: 'GET', url: '/sse/send', remoteAddress: '203.0.113.7' });
    assert.equal(seed.statusCode, 200);
    const history = await h.herald.app.inject({ method: 'GET', url: '/v1/events?channel=x', remoteAddress: '203.0.113.7' });
    assert.equal(history.statusCode, 200);
  } finally {
    await h.close();
  }
});

test('loopback means 127.0.0.0/8, ::1 and IPv4-mapped loopback only', () => {
  for (const a of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopback(a), a);
  for (const a of [undefined, '', '128.0.0.1', '10.0.0.1', '::ffff:10.0.0.1', '::2', 'localhost', '0.0.0.0']) assert.ok(!isLoopback(a), String(a));
});
