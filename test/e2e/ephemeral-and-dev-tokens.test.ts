import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connectWs, openWsWith, WsClient } from '../helpers/auth-clients.js';
import { openEventSource } from '../helpers/clients.js';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';
import { TEST_SECRET, userToken } from '../helpers/tokens.js';

// Ephemeral events (a publish with "ephemeral": true) and dev-mode tokens (POST /v1/dev/token),
// over real sockets against an in-process Herald.

const wsUrl = (base: string, token?: string) => `${base.replace('http', 'ws')}/v1/ws${token ? `?token=${encodeURIComponent(token)}` : ''}`;

/** An SSE response read as text, to look at its bytes. */
async function rawStream(url: string) {
  const abort = new AbortController();
  const res = await fetch(url, { signal: abort.signal });
  let text = '';
  void (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body!) text += decoder.decode(chunk as Uint8Array, { stream: true });
    } catch {
      // aborted
    }
  })();
  return { text: () => text, close: () => abort.abort() };
}

async function devToken(base: string, body: unknown) {
  const r = await postJson(`${base}/v1/dev/token`, body);
  assert.equal(r.status, 201, r.text);
  return r.json as { token: string; expiresAt: string };
}

describe('ephemeral events', () => {
  let h: Awaited<ReturnType<typeof startInProcess>>;
  before(async () => {
    h = await startInProcess({ websocket: { clientPublish: ['room.>'] } });
  });
  after(() => h.close());

  test('reach live subscribers over SSE and WebSocket without an id, and are never logged', async (t) => {
    const json = openEventSource(`${h.url}/v1/stream?channel=room.1&format=json`, ['typing', 'message']);
    const text = openEventSource(`${h.url}/v1/stream?channel=room.1`, ['typing', 'message']);
    const raw = await rawStream(`${h.url}/v1/stream?channel=room.1&format=json`);
    const ws = await openWsWith(wsUrl(h.url));
    t.after(() => {
      for (const c of [json, text, raw, ws]) c.close();
    });
    await ws.request({ op: 'subscribe', channel: 'room.1' });
    // Both patterns match: the connection still gets the ephemeral event once.
    await ws.request({ op: 'subscribe', channel: 'room.>' });
    // A stored event that every client has received: each of them is live from here on.
    const stored = await postJson(`${h.url}/v1/publish`, { channel: 'room.1', type: 'message', data: { text: 'hi' } });
    assert.equal(stored.status, 201);
    await json.until(1);
    await text.until(1);
    await ws.next((f) => f.op === 'event');
    const r = await postJson(`${h.url}/v1/publish`, { channel: 'room.1', type: 'typing', data: { from: 'ann' }, ephemeral: true });
    assert.equal(r.status, 202);
    assert.deepEqual(r.json, { ephemeral: true });
    // Over WebSocket too, from a client allowed to publish: acked with no id.
    const ack = await ws.request({ op: 'publish', channel: 'room.1', type: 'typing', data: { from: 'bo' }, ephemeral: true });
    assert.deepEqual({ op: ack.op, ephemeral: ack.ephemeral, id: ack.id }, { op: 'ack', ephemeral: true, id: undefined });

    await json.until(3);
    await text.until(3);
    const typing = json.messages.filter((m) => m.type === 'typing');
    assert.deepEqual(typing.map((m) => JSON.parse(m.data).data.from), ['ann', 'bo']);
    for (const m of typing) {
      const e = JSON.parse(m.data);
      assert.equal(e.ephemeral, true);
      assert.equal(e.id, undefined);
      assert.equal(e.channel, 'room.1');
    }
    // On the wire: no `id:` line, so a browser's Last-Event-ID stays on the stored event.
    const blocks = await waitFor(() => {
      const b = raw.text().split('\n\n').filter((x) => x.includes('"ephemeral":true'));
      return b.length === 2 ? b : undefined;
    }, 5_000, 'two ephemeral SSE blocks');
    for (const b of blocks!) assert.ok(!/^id:/m.test(b), b);
    assert.deepEqual(text.messages.filter((m) => m.type === 'typing').map((m) => JSON.parse(m.data)), [{ from: 'ann' }, { from: 'bo' }]);

    await waitFor(() => ws.frames.filter((f) => f.op === 'event').length >= 3, 5_000, 'three event frames');
    const frames = ws.frames.filter((f) => f.op === 'event');
    assert.deepEqual(frames.map((f) => [f.type, f.id === undefined, f.ephemeral === true]), [
      ['message', false, false],
      ['typing', true, true],
      ['typing', true, true],
    ]);

    // The log has the message only; a client resuming from the start gets the message only.
    const history = (await (await fetch(`${h.url}/v1/events?channel=room.1`)).json()) as { events: Array<{ type: string; data: unknown }> };
    assert.deepEqual(history.events.map((e: { type: string }) => e.type), ['message']);
    const late = await openWsWith(wsUrl(h.url));
    await late.request({ op: 'subscribe', channel: 'room.1', since: '0' });
    await late.next((f) => f.op === 'event');
    await postJson(`${h.url}/v1/publish`, { channel: 'room.1', type: 'message', data: { text: 'marker' } });
    await late.next((f) => f.op === 'event' && f.data.text === 'marker');
    assert.deepEqual(late.frames.filter((f) => f.op === 'event').map((f) => f.type), ['message', 'message']);
    late.close();
  });

  test('refuses an ephemeral event with an idempotency key, in a batch, or with a non-boolean flag', async () => {
    const withKey = await postJson(`${h.url}/v1/publish`, { channel: 'room.1', data: 1, ephemeral: true, idempotencyKey: 'k1' });
    assert.equal(withKey.status, 400);
    assert.equal(withKey.json.error.code, 'BODY_INVALID');
    const batch = await postJson(`${h.url}/v1/publish`, [{ channel: 'room.1', data: 1 }, { channel: 'room.1', data: 2, ephemeral: true }]);
    assert.equal(batch.status, 400);
    assert.equal(batch.json.error.code, 'BODY_INVALID');
    const flag = await postJson(`${h.url}/v1/publish`, { channel: 'room.1', data: 1, ephemeral: 'yes' });
    assert.equal(flag.status, 400);
    // Nothing of these was stored.
    const history = (await (await fetch(`${h.url}/v1/events?channel=room.1`)).json()) as { events: Array<{ type: string; data: unknown }> };
    assert.ok(history.events.every((e: { data: unknown }) => e.data !== 1 && e.data !== 2));
  });

  test('an ephemeral publish needs the same permission as any publish', async () => {
    const ws = await openWsWith(wsUrl(h.url));
    const r = await ws.request({ op: 'publish', channel: 'elsewhere', data: 1, ephemeral: true });
    assert.equal(r.code, 'PUBLISH_FORBIDDEN');
    ws.close();
  });
});

describe('dev tokens', () => {
  let h: Awaited<ReturnType<typeof startInProcess>>;
  before(async () => {
    h = await startInProcess({ presence: { channels: ['room.*'], leaveDelaySeconds: 0 } });
  });
  after(() => h.close());

  test('give a WebSocket connection its identity for presence and the publish grants asked for', async () => {
    const { token, expiresAt } = await devToken(h.url, { sub: 'ann', publish: ['room.>'], ttlSeconds: 60 });
    assert.ok(Date.parse(expiresAt) > Date.now());
    const ann = await openWsWith(wsUrl(h.url, token));
    await ann.request({ op: 'subscribe', channel: 'room.1', presence: true });
    const snapshot = await ann.request({ op: 'presence', channel: 'room.1' });
    assert.deepEqual(snapshot.members, [{ identity: 'ann', connections: 1 }]);
    const ack = await ann.request({ op: 'publish', channel: 'room.1', data: 'hi' });
    assert.equal(ack.op, 'ack');
    assert.match(ack.id, /-\d+$/);
    const denied = await ann.request({ op: 'publish', channel: 'other', data: 'hi' });
    assert.equal(denied.code, 'PUBLISH_FORBIDDEN');

    // Renewal with a fresh dev token for the same sub works on the open connection.
    const fresh = await devToken(h.url, { sub: 'ann', publish: ['room.>'] });
    const renewed = await ann.request({ op: 'auth', token: fresh.token });
    assert.equal(renewed.identity, 'ann');

    // An anonymous connection is counted, not named.
    const anon = await openWsWith(wsUrl(h.url));
    await anon.request({ op: 'subscribe', channel: 'room.1' });
    const both = await ann.request({ op: 'presence', channel: 'room.1' });
    assert.deepEqual([both.members, both.anonymous], [[{ identity: 'ann', connections: 1 }], 1]);
    ann.close();
    anon.close();
  });

  test('a dev token that is forged or expired is refused; another server’s token is ignored', async () => {
    const { token } = await devToken(h.url, { sub: 'ann', ttlSeconds: 1 });
    const [head, body] = token.split('.');
    const forged = `${head}.${body}.${'A'.repeat(43)}`;
    const refused = await connectWs(wsUrl(h.url, forged));
    assert.ok(!(refused instanceof WsClient));
    assert.deepEqual([refused.status, refused.code], [401, 'TOKEN_INVALID']);
    const sse = await fetch(`${h.url}/v1/stream?channel=room.1`, { headers: { authorization: `Bearer ${forged}` } });
    assert.equal(sse.status, 401);
    await sse.body?.cancel();

    await waitFor(() => Date.now() > JSON.parse(Buffer.from(body!, 'base64url').toString()).exp * 1000 + 50, 3_000, 'the token to expire');
    const expired = await connectWs(wsUrl(h.url, token));
    assert.ok(!(expired instanceof WsClient));
    assert.deepEqual([expired.status, expired.code], [401, 'TOKEN_EXPIRED']);

    // A JWT Herald did not mint for dev mode is no credential here: anonymous, as before.
    const other = await openWsWith(wsUrl(h.url, await userToken('zed', ['room.>'])));
    const ack = await other.request({ op: 'subscribe', channel: 'room.9' });
    assert.equal(ack.op, 'ack');
    other.close();
  });

  test('check what they are asked for (other web pages and rebound names: test/hardening/dev-mode-apis-*)', async () => {
    for (const body of [{}, { sub: '' }, { sub: 'ann', ttlSeconds: 999_999 }, { sub: 'ann', publish: ['bad channel'] }, { sub: 'ann', publish: 'room.>' }]) {
      const r = await postJson(`${h.url}/v1/dev/token`, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.error.code, 'BODY_INVALID');
    }
  });

  test('do not exist once credentials are configured', async () => {
    const secured = await startInProcess({ auth: { jwt: { secret: TEST_SECRET } } });
    try {
      const r = await postJson(`${secured.url}/v1/dev/token`, { sub: 'ann' });
      assert.equal(r.status, 404);
      assert.equal(r.json.error.code, 'NOT_FOUND');
    } finally {
      await secured.close();
    }
  });
});
