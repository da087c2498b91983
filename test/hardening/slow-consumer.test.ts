import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { openEventSource, openWs } from '../helpers/clients.js';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';

/**
 * A client that stops reading must be cut off at its backlog bound, and must never hold back
 * anyone else: the fast subscriber receives every batch before the next one is published, while
 * the stuck one is still connected and then after it is gone.
 */
test('a stuck SSE and a stuck WebSocket client are cut off as slow; a fast one gets every event meanwhile', async (t) => {
  const h = await startInProcess({ limits: { outgoingBufferBytes: 64 * 1024 } });
  t.after(() => h.close());
  const host = new URL(h.url);

  // Stuck SSE client: sends its request, then never reads again.
  const stuckSse = connect({ host: host.hostname, port: Number(host.port) });
  stuckSse.on('error', () => {});
  stuckSse.write('GET /v1/stream?channel=load HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
  stuckSse.pause();
  // Stuck WebSocket client: subscribes, then its socket stops reading.
  const stuckWs = await openWs(h.url.replace('http', 'ws') + '/v1/ws');
  stuckWs.send({ op: 'subscribe', channel: 'load', ref: 1 });
  await stuckWs.next((f) => f.ref === 1);
  (stuckWs.ws as unknown as { _socket: import('node:net').Socket })._socket.pause();

  const fast = openEventSource(`${h.url}/v1/stream?channel=load`);
  t.after(() => fast.close());
  await waitFor(() => h.herald.metrics.connectionCount('sse') === 2 && fast.opens > 0);

  const chunk = 'x'.repeat(16 * 1024);
  let published = 0;
  let batches = 0;
  // Bounded: at most 200 batches of 48 x 16 KiB (the kernel's socket buffers absorb a few MiB
  // before the server-side backlog can grow).
  while (batches < 200 && (h.herald.metrics.connectionCount('sse') > 1 || h.herald.metrics.connectionCount('ws') > 0)) {
    const r = await postJson(`${h.url}/v1/publish`, Array.from({ length: 48 }, () => ({ channel: 'load', data: chunk })));
    assert.equal(r.status, 201);
    published += 48;
    batches++;
    await fast.until(published, 10_000);
  }
  assert.equal(h.herald.metrics.connectionCount('sse'), 1, 'the stuck SSE client was cut off');
  assert.equal(h.herald.metrics.connectionCount('ws'), 0, 'the stuck WebSocket client was cut off');
  // The fast client saw every event, in order, while the stuck ones were still connected.
  assert.equal(fast.messages.length, published);
  stuckSse.destroy();
  // The WebSocket client learns why when it reads again: close code 4000 (or the socket is gone).
  (stuckWs.ws as unknown as { _socket: import('node:net').Socket })._socket.resume();
  const closed = await stuckWs.closedWith(10_000);
  assert.ok([4000, 1006].includes(closed.code), `close code ${closed.code}`);
});
