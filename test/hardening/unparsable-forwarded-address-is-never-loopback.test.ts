import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseForwardedAddress, UNKNOWN_CLIENT } from '../../src/http/client-address.js';
import { postJson, startInProcess } from '../helpers/herald.js';

/**
 * Behind a proxy on this machine every socket peer is loopback. An X-Forwarded-For entry Herald
 * cannot read must make the client unknown, never the proxy itself: otherwise anyone behind the
 * proxy passes dev mode's loopback-only check and the limits' loopback exemption.
 */
const UNREADABLE = ['unknown', '_hidden', '_a1b2', 'not-an-address', '', '999.1.1.1', '[127.0.0.1]'];
const WITH_PORTS: Array<[string, string]> = [
  ['203.0.113.7:4711', '203.0.113.7'],
  ['[2001:db8::1]:443', '2001:db8::1'],
  ['[2001:db8::2]', '2001:db8::2'],
  ['198.51.100.4', '198.51.100.4'],
];

test('an X-Forwarded-For entry is an address, an address with a port, or the unknown client', () => {
  for (const v of UNREADABLE) assert.equal(parseForwardedAddress(v), UNKNOWN_CLIENT, v);
  for (const [v, want] of WITH_PORTS) assert.equal(parseForwardedAddress(v), want, v);
});

test('dev mode behind a loopback proxy: an unreadable or remote forwarded client may not publish or create endpoints', async () => {
  const h = await startInProcess({ store: { type: 'memory' }, trustProxy: true });
  try {
    for (const xff of [...UNREADABLE, ...WITH_PORTS.map(([v]) => v), '10.0.0.9, unknown']) {
      const pub = await postJson(`${h.url}/v1/publish`, { channel: 'x', data: 1 }, { 'x-forwarded-for': xff });
      assert.equal(pub.status, 403, `publish with X-Forwarded-For: ${xff}`);
      assert.equal(pub.json.error.code, 'LOOPBACK_ONLY');
      const ep = await postJson(`${h.url}/v1/endpoints`, { url: 'https://example.com/hook' }, { 'x-forwarded-for': xff });
      assert.equal(ep.status, 403, `endpoint with X-Forwarded-For: ${xff}`);
      assert.equal(ep.json.error.code, 'LOOPBACK_ONLY');
    }
    // a client on this machine, seen by the proxy with its port, is still this machine
    const local = await postJson(`${h.url}/v1/publish`, { channel: 'x', data: 1 }, { 'x-forwarded-for': '127.0.0.1:50123' });
    assert.equal(local.status, 201);
  } finally {
    await h.close();
  }
});

test('unknown clients share one rate-limit bucket: they do not escape the limit as loopback did', async () => {
  const h = await startInProcess({ store: { type: 'memory' }, trustProxy: true, limits: { webhooksPerSecond: 2 } });
  try {
    const post = (xff: string) =>
      fetch(`${h.url}/v1/webhooks/nowhere`, { method: 'POST', headers: { 'x-forwarded-for': xff, 'content-type': 'application/json' }, body: '{}' });
    // sent at once, so the bucket (2 a second) has no time to refill between them
    const burst = await Promise.all(['unknown', '_hidden', '_x', 'unknown', '_y', '_hidden', 'junk', 'unknown'].map(post));
    const refused = burst.filter((r) => r.status === 429).length;
    assert.ok(refused >= 4, `${refused} of 8 refused`);
  } finally {
    await h.close();
  }
});
