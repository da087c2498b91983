import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AUTH_CLOSE } from '../../src/auth/ws-session.js';
import { connectWs, openWsWith, WsClient, type Refusal } from '../helpers/auth-clients.js';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';
import { TEST_SECRET, userToken } from '../helpers/tokens.js';

const KEY_A = 'publisher-a-key-0123456789abcdef';
const KEY_B = 'publisher-b-key-0123456789abcdef';

/** Every test here sets applyToLoopback (loopback is exempt by default) and trustProxy, so one
 * machine can be many client addresses through X-Forwarded-For. */
function limitsConfig(limits: Record<string, unknown>) {
  return {
    store: { type: 'memory' },
    trustProxy: true,
    limits: {
      applyToLoopback: true,
      publishPerSecond: 0,
      connectPerSecond: 0,
      webhooksPerSecond: 0,
      connectionsPerIp: 0,
      connectionsPerIdentity: 0,
      messagesPerSecondPerConnection: 0,
      ...limits,
    },
    auth: {
      apiKeys: [
        { key: KEY_A, name: 'a', scopes: ['publish:>'] },
        { key: KEY_B, name: 'b', scopes: ['publish:>'] },
      ],
      jwt: { secret: TEST_SECRET },
      publicChannels: ['news'],
    },
  };
}

const from = (ip: string) => ({ 'x-forwarded-for': ip });

async function openStream(url: string, headers: Record<string, string>) {
  const ac = new AbortController();
  const res = await fetch(`${url}/v1/stream?channel=news`, { headers, signal: ac.signal });
  let body: { error?: { code?: string } } | undefined;
  if (res.status !== 200) body = (await res.json()) as typeof body;
  return { status: res.status, code: body?.error?.code, retryAfter: res.headers.get('retry-after'), close: () => ac.abort() };
}

describe('publishPerSecond: per API key, 429 with Retry-After, then recovers', () => {
  let h: Awaited<ReturnType<typeof startInProcess>>;
  before(async () => {
    h = await startInProcess(limitsConfig({ publishPerSecond: 5 }));
  });
  after(() => h.close());

  test('a burst past the rate is refused; another key is not affected; it recovers', async () => {
    const publish = (key: string) => postJson(`${h.url}/v1/publish`, { channel: 'news', data: 1 }, { authorization: `Bearer ${key}` });
    // sent at once, so the bucket has no time to refill between them
    const burst = await Promise.all(Array.from({ length: 20 }, () => publish(KEY_A)));
    const accepted = burst.filter((r) => r.status === 201).length;
    const refused = burst.filter((r) => r.status === 429);
    assert.ok(accepted >= 5 && accepted <= 8, `accepted ${accepted}`);
    assert.equal(refused.length, 20 - accepted);
    for (const r of refused) {
      assert.equal(r.json.error.code, 'RATE_LIMITED');
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
    }
    assert.equal((await publish(KEY_B)).status, 201);
    await waitFor(async () => (await publish(KEY_A)).status === 201, 3_000, 'the rate to recover');
  });
});

describe('connection limits', () => {
  test('connectPerSecond: per client address', async () => {
    const h = await startInProcess(limitsConfig({ connectPerSecond: 3 }));
    try {
      const all = await Promise.all(Array.from({ length: 10 }, () => openStream(h.url, from('203.0.113.1'))));
      const open = all.filter((s) => s.status === 200);
      const refused = all.filter((s) => s.status !== 200);
      assert.ok(open.length >= 3 && open.length <= 5, `admitted ${open.length}`);
      for (const r of refused) {
        assert.deepEqual([r.status, r.code], [429, 'RATE_LIMITED']);
        assert.ok(Number(r.retryAfter) >= 1);
      }
      const other = await openStream(h.url, from('203.0.113.2'));
      assert.equal(other.status, 200);
      for (const s of [...open, other]) s.close();
      await waitFor(async () => {
        const s = await openStream(h.url, from('203.0.113.1'));
        s.close();
        return s.status === 200;
      }, 3_000, 'the connect rate to recover');
    } finally {
      await h.close();
    }
  });

  test('connectionsPerIp: a hundred and fifty sockets from one address, a hundred admitted, others unaffected', async () => {
    const h = await startInProcess(limitsConfig({ connectionsPerIp: 100 }));
    const ws = h.url.replace('http', 'ws') + '/v1/ws';
    const clients: WsClient[] = [];
    try {
      const results = await Promise.all(Array.from({ length: 150 }, () => connectWs(ws, from('198.51.100.7'))));
      for (const r of results) if (r instanceof WsClient) clients.push(r);
      const refused = results.filter((r): r is Refusal => !(r instanceof WsClient));
      assert.equal(clients.length, 100);
      assert.equal(refused.length, 50);
      assert.ok(refused.every((r) => r.status === 429 && r.code === 'TOO_MANY_CONNECTIONS' && r.retryAfter));
      // another address, and the publish API, are not disturbed
      const other = await openWsWith(ws, from('198.51.100.8'));
      assert.equal((await other.request({ op: 'subscribe', channel: 'news' })).op, 'ack');
      other.close();
      // a closed socket frees its place
      clients.pop()!.close();
      await waitFor(async () => {
        const r = await connectWs(ws, from('198.51.100.7'));
        if (r instanceof WsClient) clients.push(r);
        return r instanceof WsClient;
      }, 3_000, 'a freed place');
    } finally {
      for (const c of clients) c.close();
      await h.close();
    }
  });

  test('connectionsPerIdentity: the same sub from several addresses', async () => {
    const h = await startInProcess(limitsConfig({ connectionsPerIdentity: 2 }));
    try {
      const u1 = await userToken('u1', ['news']);
      const a = await openStream(h.url, { ...from('192.0.2.1'), authorization: `Bearer ${u1}` });
      const b = await openStream(h.url, { ...from('192.0.2.2'), authorization: `Bearer ${u1}` });
      const c = await openStream(h.url, { ...from('192.0.2.3'), authorization: `Bearer ${u1}` });
      assert.deepEqual([a.status, b.status, c.status, c.code], [200, 200, 429, 'TOO_MANY_CONNECTIONS']);
      const u2 = await openStream(h.url, { ...from('192.0.2.3'), authorization: `Bearer ${await userToken('u2', ['news'])}` });
      assert.equal(u2.status, 200);
      a.close();
      await waitFor(async () => {
        const d = await openStream(h.url, { ...from('192.0.2.4'), authorization: `Bearer ${u1}` });
        d.close();
        return d.status === 200;
      }, 3_000, 'a freed place for u1');
      for (const s of [b, u2]) s.close();
    } finally {
      await h.close();
    }
  });
});

test('webhooksPerSecond: inbound webhook requests per address, before any signature check', async () => {
  const h = await startInProcess(limitsConfig({ webhooksPerSecond: 2 }));
  try {
    const post = (ip: string) => fetch(`${h.url}/v1/webhooks/stripe`, { method: 'POST', headers: from(ip), body: '{}' });
    const burst = await Promise.all(Array.from({ length: 10 }, () => post('203.0.113.9')));
    const refused = burst.filter((r) => r.status === 429);
    assert.ok(refused.length >= 6, `refused ${refused.length}`);
    assert.equal(((await refused[0]!.json()) as { error: { code: string } }).error.code, 'RATE_LIMITED');
    assert.ok(refused[0]!.headers.get('retry-after'));
    assert.notEqual((await post('203.0.113.10')).status, 429);
  } finally {
    await h.close();
  }
});

test('messagesPerSecondPerConnection: a flooding socket is closed with 4429, its neighbour is not', async () => {
  const h = await startInProcess(limitsConfig({ messagesPerSecondPerConnection: 5 }));
  const ws = h.url.replace('http', 'ws') + '/v1/ws';
  try {
    const flood = await openWsWith(ws);
    const calm = await openWsWith(ws);
    for (let i = 0; i < 50; i++) flood.send({ op: 'unsubscribe', channel: `c${i}` });
    const closed = await flood.closedWith();
    assert.equal(closed.code, AUTH_CLOSE.RATE_LIMITED);
    assert.match(closed.reason, /rate/);
    assert.equal((await calm.request({ op: 'subscribe', channel: 'news' })).op, 'ack');
    calm.close();
  } finally {
    await h.close();
  }
});

test('loopback clients are exempt unless applyToLoopback is set', async () => {
  const h = await startInProcess({ ...limitsConfig({ publishPerSecond: 2 }), trustProxy: false, limits: { publishPerSecond: 2 } });
  try {
    for (let i = 0; i < 10; i++) {
      const r = await postJson(`${h.url}/v1/publish`, { channel: 'news', data: i }, { authorization: `Bearer ${KEY_A}` });
      assert.equal(r.status, 201);
    }
  } finally {
    await h.close();
  }
});
