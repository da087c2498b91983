import assert from 'node:assert/strict';
import type { LookupFunction } from 'node:net';
import { after, describe, test } from 'node:test';
import { isForbiddenAddress } from '../../src/transports/webhook-out/ssrf-guard.js';
import { WebhookSender } from '../../src/transports/webhook-out/webhook-sender.js';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';

/**
 * SSRF guard (OWASP SSRF): with `outbound.allowPrivateTargets` false (the default), Herald never
 * connects to loopback, private, link-local, unique-local or metadata addresses, judged on the
 * address it is about to connect to, not on an earlier look-up.
 */

const receivers: Receiver[] = [];
after(async () => {
  for (const r of receivers) await r.close();
});

/** A resolver that answers what the test says, as a DNS server controlled by an attacker would. */
function resolverAnswering(addresses: string[]): LookupFunction {
  return ((_host: string, _opts: unknown, cb: (e: Error | null, a: { address: string; family: number }[]) => void) => {
    cb(null, addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  }) as unknown as LookupFunction;
}

describe('SSRF guard', () => {
  test('classifies addresses: only public unicast is allowed', () => {
    const forbidden = [
      '127.0.0.1', '127.255.0.9', '0.0.0.0', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1',
      '169.254.169.254', '100.100.100.200', '100.64.0.1', '168.63.129.16', '224.0.0.1', '255.255.255.255',
      '::', '::1', 'fe80::1', 'fd00:ec2::254', 'fc00::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1',
      '::ffff:169.254.169.254', '64:ff9b::a9fe:a9fe', '2002:7f00:1::', '2001:db8::1', 'not-an-ip',
      // IPv6 forms that carry an IPv4 address, or tunnel to one
      '::ffff:0:7f00:1', '::ffff:0:127.0.0.1', '::ffff:0:a9fe:a9fe', '::127.0.0.1', '64:ff9b::7f00:1',
      '64:ff9b::10.0.0.1', '64:ff9b:1::7f00:1', '64:ff9b:1:7f00:1::', '64:ff9b:1:ffff::808:808',
      '2001:0:4136:e378:8000:63bf:3fff:fdd2', '2001::1', '2002:a00:1::1', '2002:c0a8:101::1',
      '2001:4860:1:2:0:5efe:c0a8:101', 'fe80::200:5efe:7f00:1',
    ];
    for (const a of forbidden) assert.equal(isForbiddenAddress(a), true, a);
    for (const a of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808', '::ffff:0:808:808', '2002:808:808::1', '2001:4860:4860::8888']) {
      assert.equal(isForbiddenAddress(a), false, a);
    }
  });

  test('refuses endpoints whose URL is a forbidden address (400 TARGET_FORBIDDEN)', async (t) => {
    const h = await startInProcess();
    t.after(() => h.close());
    for (const url of [
      'http://127.0.0.1:9/hook', 'http://10.0.0.8/', 'http://192.168.0.1/', 'http://172.20.1.1/',
      'http://169.254.169.254/latest/meta-data/', 'http://[::1]/', 'http://[fd00:ec2::254]/', 'http://[fe80::1]/',
      'http://[::ffff:127.0.0.1]/', 'http://0.0.0.0/', 'http://2130706433/', 'http://0x7f.1/',
      'http://[::ffff:0:7f00:1]/', 'http://[64:ff9b::a9fe:a9fe]/latest/meta-data/', 'http://[64:ff9b:1::a00:1]/',
      'http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/', 'http://[2002:7f00:1::1]/', 'http://[2001:4860:0:1:0:5efe:a00:1]/',
    ]) {
      const r = await postJson(`${h.url}/v1/endpoints`, { url, channels: ['a'] });
      assert.equal(r.status, 400, url);
      assert.equal(r.json.error.code, 'TARGET_FORBIDDEN', url);
    }
  });

  test('a host name that resolves to loopback is refused when connecting, and recorded', async (t) => {
    const h = await startInProcess({ outbound: { retryScheduleSeconds: [0], sweepIntervalSeconds: 0.05 } });
    t.after(() => h.close());
    const rx = await startReceiver();
    receivers.push(rx);
    const url = rx.url.replace('127.0.0.1', 'localhost');
    const ep = await postJson(`${h.url}/v1/endpoints`, { url, channels: ['a'] });
    assert.equal(ep.status, 201, 'names are judged when connecting: their answers can change');
    await postJson(`${h.url}/v1/publish`, { channel: 'a', data: 'secret stuff' });
    const d = await waitFor(async () => {
      const l = (await (await fetch(`${h.url}/v1/endpoints/${ep.json.id}/deliveries`)).json()) as any;
      return l.deliveries[0]?.status === 'dead' ? l.deliveries[0] : undefined;
    });
    assert.equal(d.attempts[0].status, null);
    assert.match(d.attempts[0].error, /target forbidden: localhost resolves to (127\.0\.0\.1|::1)/);
    assert.equal(rx.requests.length, 0, 'nothing reached the loopback receiver');
  });

  test('a name answering an IPv6 form that carries a private IPv4 is refused when connecting', async () => {
    const rx = await startReceiver();
    receivers.push(rx);
    const port = new URL(rx.url).port;
    for (const answer of ['::ffff:0:7f00:1', '64:ff9b::a9fe:a9fe', '64:ff9b:1::a00:1', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '2002:a00:1::1']) {
      const sender = new WebhookSender({ timeoutMs: 2_000, allowPrivateTargets: false, lookup: resolverAnswering([answer]) });
      const r = await sender.send(`http://embedded.test:${port}/hook`, {}, '{}');
      await sender.close();
      assert.equal(r.status, null, answer);
      assert.match(String(r.error), new RegExp(`target forbidden: embedded\\.test resolves to ${answer.replace(/\./g, '\\.')}`), answer);
    }
    assert.equal(rx.requests.length, 0);
  });

  test('the answer used for the connection is the one checked (DNS rebinding)', async () => {
    const rx = await startReceiver();
    receivers.push(rx);
    const port = new URL(rx.url).port;
    // The name first looks public, but the connection's own look-up gets loopback: refused.
    let calls = 0;
    const rebinding = ((host: string, opts: unknown, cb: never) => {
      calls++;
      return resolverAnswering(calls === 1 ? ['93.184.216.34'] : ['127.0.0.1'])(host, opts as never, cb);
    }) as unknown as LookupFunction;
    const check = new WebhookSender({ timeoutMs: 2_000, allowPrivateTargets: false, lookup: rebinding });
    rebinding('rebind.test', {}, (() => undefined) as never); // the "validation" look-up
    const r = await check.send(`http://rebind.test:${port}/hook`, {}, '{}');
    await check.close();
    assert.equal(r.status, null);
    assert.match(String(r.error), /target forbidden: rebind\.test resolves to 127\.0\.0\.1/);
    // A name with one public and one private answer is refused as a whole.
    const mixed = new WebhookSender({ timeoutMs: 2_000, allowPrivateTargets: false, lookup: resolverAnswering(['93.184.216.34', '10.0.0.1']) });
    const m = await mixed.send(`http://mixed.test:${port}/hook`, {}, '{}');
    await mixed.close();
    assert.match(String(m.error), /target forbidden: mixed\.test resolves to 10\.0\.0\.1/);
    assert.equal(rx.requests.length, 0);
    // With the guard off (tests, private deployments), the same resolver reaches the receiver.
    const open = new WebhookSender({ timeoutMs: 2_000, allowPrivateTargets: true, lookup: resolverAnswering(['127.0.0.1']) });
    const o = await open.send(`http://anything.test:${port}/hook`, {}, '{}');
    await open.close();
    assert.equal(o.status, 200);
  });
});
