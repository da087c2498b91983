import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rawSocket } from '../../src/transports/ws/ws-internals.js';
import { openWs } from '../helpers/clients.js';
import { startInProcess, waitFor } from '../helpers/herald.js';

test('a WebSocket peer that stops answering pings is dropped; a live one stays', async (t) => {
  const h = await startInProcess({ websocket: { pingIntervalSeconds: 0.1 } });
  t.after(() => h.close());
  const wsUrl = h.url.replace('http', 'ws') + '/v1/ws';
  const live = await openWs(wsUrl);
  const dead = await openWs(wsUrl);
  t.after(() => {
    live.close();
    dead.ws.terminate();
  });
  await waitFor(() => h.herald.metrics.connectionCount('ws') === 2);
  // A peer whose socket no longer reads never sees the pings, so it never answers them.
  rawSocket(dead.ws).pause();
  await waitFor(() => h.herald.metrics.connectionCount('ws') === 1, 5_000, 'the dead peer to be dropped');
  // the live one still works
  live.send({ op: 'subscribe', channel: 'alive', ref: 1 });
  assert.equal((await live.next((f) => f.ref === 1)).op, 'ack');
  assert.equal(live.closed, undefined);
});
