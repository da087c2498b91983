import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AUTH_CLOSE } from '../../src/auth/ws-session.js';
import { connectWs, openWsWith, WsClient, type Refusal } from '../helpers/auth-clients.js';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';
import { sign, TEST_SECRET, userToken } from '../helpers/tokens.js';

const PUBLISHER = 'publisher-key-0123456789abcdef';

describe('WebSocket with auth: connect, auth op, per-channel subscribe, refresh, expiry', () => {
  let h: Awaited<ReturnType<typeof startInProcess>>;
  let wsUrl: string;
  const publish = (channel: string, data: unknown) =>
    postJson(`${h.url}/v1/publish`, { channel, data }, { authorization: `Bearer ${PUBLISHER}` });

  before(async () => {
    h = await startInProcess({
      store: { type: 'memory' },
      cors: { origins: ['https://app.example'] },
      auth: {
        apiKeys: [{ key: PUBLISHER, scopes: ['publish:>'] }],
        jwt: { secret: TEST_SECRET, clockToleranceSeconds: 0 },
        publicChannels: ['news'],
      },
    });
    wsUrl = h.url.replace('http', 'ws') + '/v1/ws';
  });
  after(() => h.close());

  test('a token in the query, header or cookie admits the socket; subscribe is checked per channel', async () => {
    const t = await userToken('u1', ['user.u1.*']);
    for (const [url, headers] of [
      [`${wsUrl}?token=${t}`, {}],
      [wsUrl, { authorization: `Bearer ${t}` }],
      [wsUrl, { cookie: `herald_token=${t}` }],
    ] as const) {
      const c = await openWsWith(url, headers);
      try {
        assert.equal((await c.request({ op: 'subscribe', channel: 'user.u1.inbox' })).op, 'ack');
        const denied = await c.request({ op: 'subscribe', channel: 'user.u2.inbox' });
        assert.deepEqual([denied.op, denied.code], ['error', 'SUBSCRIBE_FORBIDDEN']);
        await publish('user.u1.inbox', 'for u1');
        await publish('user.u2.inbox', 'for u2');
        const ev = await c.next((f) => f.op === 'event');
        assert.equal(ev.data, 'for u1');
        assert.equal(c.frames.filter((f) => f.op === 'event').length, 1);
      } finally {
        c.close();
      }
    }
  });

  test('a bad token at connect is refused with 401 and its code; a foreign Origin with 403', async () => {
    const expired = await sign({ sub: 'u1', exp: Math.floor(Date.now() / 1000) - 10 });
    const r1 = (await connectWs(`${wsUrl}?token=${expired}`)) as Refusal;
    assert.deepEqual([r1.status, r1.code], [401, 'TOKEN_EXPIRED']);
    const r2 = (await connectWs(wsUrl, { authorization: 'Bearer nonsense-not-a-key-or-token' })) as Refusal;
    assert.deepEqual([r2.status, r2.code], [401, 'API_KEY_INVALID']); // keys and JWT configured: not a JWT, so a key
    const r4 = (await connectWs(`${wsUrl}?token=${await sign({ sub: 'u1' }, 'a-different-secret-0123456789abcdef')}`)) as Refusal;
    assert.deepEqual([r4.status, r4.code], [401, 'TOKEN_INVALID']);
    const r3 = (await connectWs(wsUrl, { origin: 'https://evil.example' })) as Refusal;
    assert.deepEqual([r3.status, r3.code], [403, 'ORIGIN_FORBIDDEN']);
    const ok = await openWsWith(wsUrl, { origin: 'https://app.example' });
    ok.close();
  });

  test('a cross-origin cookie is not a credential unless cors.origins names the origin', async () => {
    const t = await userToken('u1', ['user.u1.*']);
    // same origin as the Host header: the cookie counts
    const host = new URL(h.url).host;
    const same = await openWsWith(wsUrl, { origin: `http://${host}`, cookie: `herald_token=${t}` });
    assert.equal((await same.request({ op: 'subscribe', channel: 'user.u1.inbox' })).op, 'ack');
    same.close();
    // with cors.origins "*", any page may open a socket, but a cross-site page does not get to
    // ride on the user's cookie (cross-site WebSocket hijacking)
    const open = await startInProcess({ store: { type: 'memory' }, auth: { jwt: { secret: TEST_SECRET } } });
    try {
      const url = open.url.replace('http', 'ws') + '/v1/ws';
      const cross = await openWsWith(url, { origin: 'https://evil.example', cookie: `herald_token=${t}` });
      assert.equal((await cross.request({ op: 'subscribe', channel: 'user.u1.inbox' })).code, 'UNAUTHORIZED');
      cross.close();
      const explicit = await openWsWith(`${url}?token=${t}`, { origin: 'https://evil.example' });
      assert.equal((await explicit.request({ op: 'subscribe', channel: 'user.u1.inbox' })).op, 'ack');
      explicit.close();
    } finally {
      await open.close();
    }
  });

  test('anonymous sockets get public channels; private ones answer UNAUTHORIZED until an auth op', async () => {
    const c = await openWsWith(wsUrl);
    try {
      assert.equal((await c.request({ op: 'subscribe', channel: 'news' })).op, 'ack');
      const denied = await c.request({ op: 'subscribe', channel: 'user.u1.inbox' });
      assert.equal(denied.code, 'UNAUTHORIZED');
      const bad = await c.request({ op: 'auth', token: 'x.y.z' });
      assert.deepEqual([bad.op, bad.code], ['error', 'TOKEN_INVALID']);
      const ack = await c.request({ op: 'auth', token: await userToken('u1', ['user.u1.*']) });
      assert.equal(ack.op, 'ack');
      assert.equal(ack.identity, 'u1');
      assert.equal((await c.request({ op: 'subscribe', channel: 'user.u1.inbox' })).op, 'ack');
    } finally {
      c.close();
    }
  });

  test('a fresh token before expiry keeps the socket open; without one it closes with 4401', async () => {
    const now = () => Math.floor(Date.now() / 1000);
    const short = await sign({ sub: 'u1', exp: now() + 2, herald: { subscribe: ['user.u1.*'] } });
    const refreshed = await openWsWith(`${wsUrl}?token=${short}`);
    const lapsing = await openWsWith(`${wsUrl}?token=${short}`);
    try {
      assert.equal((await refreshed.request({ op: 'subscribe', channel: 'user.u1.inbox' })).op, 'ack');
      assert.equal((await lapsing.request({ op: 'subscribe', channel: 'user.u1.inbox' })).op, 'ack');
      const fresh = await sign({ sub: 'u1', exp: now() + 60, herald: { subscribe: ['user.u1.*'] } });
      const ack = await refreshed.request({ op: 'auth', token: fresh });
      assert.equal(ack.op, 'ack');
      const closed = await lapsing.closedWith(6_000);
      assert.equal(closed.code, AUTH_CLOSE.TOKEN_EXPIRED);
      assert.match(closed.reason, /expired/);
      // the refreshed socket outlives the first token and still receives events
      await publish('user.u1.inbox', 'after the first expiry');
      const ev = await refreshed.next((f) => f.op === 'event' && f.data === 'after the first expiry');
      assert.ok(ev);
      assert.equal(refreshed.closed, undefined);
    } finally {
      refreshed.close();
      lapsing.close();
    }
  });

  test('a refresh naming another sub, or not covering a subscription, closes with 4403', async () => {
    const c = await openWsWith(`${wsUrl}?token=${await userToken('u1', ['user.u1.*'])}`);
    await c.request({ op: 'subscribe', channel: 'user.u1.inbox' });
    c.send({ op: 'auth', token: await userToken('u1', ['user.u1.other']) });
    assert.equal((await c.closedWith()).code, AUTH_CLOSE.FORBIDDEN);
    const d = await openWsWith(`${wsUrl}?token=${await userToken('u1', ['user.u1.*'])}`);
    d.send({ op: 'auth', token: await userToken('u2', ['user.u1.*']) });
    assert.equal((await d.closedWith()).code, AUTH_CLOSE.FORBIDDEN);
  });

  test('clients publish where their token allows', async () => {
    const c = await openWsWith(`${wsUrl}?token=${await userToken('u1', ['chat.>'], ['chat.room-1'])}`);
    try {
      await c.request({ op: 'subscribe', channel: 'chat.room-1' });
      const ok = await c.request({ op: 'publish', channel: 'chat.room-1', data: 'hi' });
      assert.equal(ok.op, 'ack');
      assert.ok(ok.id);
      const no = await c.request({ op: 'publish', channel: 'chat.room-2', data: 'hi' });
      assert.equal(no.code, 'PUBLISH_FORBIDDEN');
      await waitFor(() => c.frames.some((f) => f.op === 'event' && f.data === 'hi'));
    } finally {
      c.close();
    }
  });

  test('the seed /ws needs permission for its channel once auth is configured', async () => {
    const base = h.url.replace('http', 'ws');
    const r = (await connectWs(`${base}/ws`)) as Refusal;
    assert.deepEqual([r.status, r.code], [401, 'UNAUTHORIZED']);
    const ok = await connectWs(`${base}/ws?token=${await userToken('u1', ['broadcast'])}`);
    assert.ok(ok instanceof WsClient);
    ok.close();
  });
});
