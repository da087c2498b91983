import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openEventSource, openWs } from '../helpers/clients.js';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';

/**
 * Bad input gets a clear error with a registry code, is never stored, and never disturbs other
 * connections: a healthy SSE and WebSocket subscriber watch the whole file and must see every
 * valid event and nothing else.
 */
describe('bad input is refused with a code, never stored, and disturbs nobody', () => {
  let h: Awaited<ReturnType<typeof startInProcess>>;
  let watcherSse: ReturnType<typeof openEventSource>;
  let watcherWs: Awaited<ReturnType<typeof openWs>>;
  const valid: string[] = [];
  const publish = (body: unknown, headers?: Record<string, string>) => postJson(`${h.url}/v1/publish`, body, headers);
  const expectError = async (body: unknown, status: number, code: string) => {
    const r = await publish(body);
    assert.equal(r.status, status, `${JSON.stringify(body)?.slice(0, 80)} -> ${r.text}`);
    assert.equal(r.json?.error?.code, code);
    assert.equal(typeof r.json.error.message, 'string');
  };

  before(async () => {
    h = await startInProcess({ limits: { maxBodyBytes: 64 * 1024, maxFrameBytes: 64 * 1024 }, websocket: { clientPublish: true } });
    watcherSse = openEventSource(`${h.url}/v1/stream?channel=>`, ['message', 'x']);
    watcherWs = await openWs(h.url.replace('http', 'ws') + '/v1/ws');
    watcherWs.send({ op: 'subscribe', channel: '>', ref: 'w' });
    await watcherWs.next((f) => f.ref === 'w');
    await waitFor(() => watcherSse.opens > 0);
    valid.push((await publish({ channel: 'ok', data: 'before' })).json.id);
  });

  after(async () => {
    valid.push((await publish({ channel: 'ok', data: 'after' })).json.id);
    await watcherSse.until(valid.length);
    await waitFor(() => watcherWs.events().length === valid.length);
    assert.deepEqual(watcherSse.messages.map((m) => m.lastEventId), valid);
    assert.deepEqual(watcherWs.events().map((e) => e.id), valid);
    const history = (await fetch(`${h.url}/v1/events?channel=>&limit=1000`).then((r) => r.json())) as { events: { id: string }[] };
    assert.deepEqual(history.events.map((e) => e.id), valid, 'only valid events are in the log');
    watcherSse.close();
    watcherWs.close();
    await h.close();
  });

  test('invalid channel names and patterns', async () => {
    for (const channel of ['', 'a..b', 'has space', 'é', 'x'.repeat(256), 42, null]) {
      await expectError({ channel, data: 1 }, 400, 'CHANNEL_INVALID');
    }
    await expectError({ channel: 'orders.*', data: 1 }, 400, 'CHANNEL_IS_PATTERN');
    await expectError({ channel: 'chat.>', data: 1 }, 400, 'CHANNEL_IS_PATTERN');
  });

  test('invalid JSON, empty bodies and wrong shapes', async () => {
    for (const body of ['{"channel":', 'not json', '']) await expectError(body, 400, 'JSON_INVALID');
    await expectError('"a string"', 400, 'BODY_INVALID');
    await expectError({ channel: 'ok' }, 400, 'DATA_MISSING');
    await expectError([], 400, 'BATCH_EMPTY');
  });

  test('type or idempotency key with CR, LF or NUL (an SSE field injection)', async () => {
    for (const type of ['a\nid: 999', 'a\r\ndata: x', 'nul\u0000', '', 'x'.repeat(256)]) {
      await expectError({ channel: 'ok', type, data: 1 }, 400, 'TYPE_INVALID');
    }
    for (const idempotencyKey of ['k\n', 'k\r', 'k\u0000', '']) {
      await expectError({ channel: 'ok', idempotencyKey, data: 1 }, 400, 'IDEMPOTENCY_KEY_INVALID');
    }
  });

  test('a batch with one bad event stores none of it', async () => {
    await expectError([{ channel: 'ok', data: 1 }, { channel: 'bad..name', data: 2 }], 400, 'CHANNEL_INVALID');
  });

  test('oversized bodies get 413', async () => {
    await expectError({ channel: 'ok', data: 'x'.repeat(70 * 1024) }, 413, 'BODY_TOO_LARGE');
  });

  test('bad history queries', async () => {
    for (const [q, code] of [
      ['', 'CHANNEL_INVALID'],
      ['channel=ok&after=-1', 'POSITION_INVALID'],
      ['channel=ok&after=abc', 'POSITION_INVALID'],
      ['channel=ok&limit=0', 'LIMIT_INVALID'],
      ['channel=ok&limit=5000', 'LIMIT_INVALID'],
    ]) {
      const r = await fetch(`${h.url}/v1/events?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(((await r.json()) as any).error.code, code, q);
    }
  });

  test('unknown routes get 404 with a code', async () => {
    const r = await fetch(`${h.url}/v1/nope`);
    assert.equal(r.status, 404);
    assert.equal(((await r.json()) as any).error.code, 'NOT_FOUND');
  });

  test('WebSocket: non-JSON, binary, unknown ops, frames without op, bad channels, bad publishes', async (t) => {
    const c = await openWs(h.url.replace('http', 'ws') + '/v1/ws');
    t.after(() => c.close());
    const cases: [unknown, string][] = [
      ['not json', 'JSON_INVALID'],
      ['[1,2]', 'FRAME_INVALID'],
      [{ ref: 1 }, 'FRAME_INVALID'],
      [{ op: 'dance', ref: 2 }, 'OP_UNKNOWN'],
      [{ op: 'subscribe', channel: 'a..b', ref: 3 }, 'CHANNEL_INVALID'],
      [{ op: 'subscribe', channel: 'ok2', since: 'abc', ref: 4 }, 'POSITION_INVALID'],
      [{ op: 'publish', channel: 'ok', type: 'a\nb', data: 1, ref: 5 }, 'TYPE_INVALID'],
      [{ op: 'publish', channel: 'ok.*', data: 1, ref: 6 }, 'CHANNEL_IS_PATTERN'],
      [{ op: 'publish', channel: 'ok', ref: 7 }, 'DATA_MISSING'],
    ];
    for (const [frame] of cases) c.send(frame);
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await waitFor(() => c.frames.length === cases.length + 1);
    assert.deepEqual(c.frames.map((f) => f.code), [...cases.map(([, code]) => code), 'BINARY_UNSUPPORTED']);
    assert.ok(c.frames.every((f) => f.op === 'error'));
    // the connection is still usable
    c.send({ op: 'publish', channel: 'ok', data: 'from ws', ref: 'good' });
    const ack = await c.next((f) => f.ref === 'good');
    valid.push(ack.id);
  });

  test('WebSocket: a frame over the limit closes that connection with 1009, nobody else', async () => {
    const c = await openWs(h.url.replace('http', 'ws') + '/v1/ws');
    c.send({ op: 'publish', channel: 'ok', data: 'x'.repeat(70 * 1024) });
    const closed = await c.closedWith();
    assert.equal(closed.code, 1009);
  });
});
