import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { startInProcess, waitFor } from '../helpers/herald.js';

/** A raw TCP client: what it receives, and whether the server closed it. */
function rawClient(url: string) {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const state = { received: '', closed: false };
  socket.on('data', (d) => (state.received += d.toString()));
  socket.on('close', () => (state.closed = true));
  socket.on('error', () => {});
  return { socket, state };
}

test('oversized request headers get 431 HEADERS_TOO_LARGE', async () => {
  const h = await startInProcess({ store: { type: 'memory' }, limits: { maxHeaderBytes: 4_096 } });
  try {
    const res = await fetch(`${h.url}/healthz`, { headers: { 'x-padding': 'a'.repeat(8_000) } });
    assert.equal(res.status, 431);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'HEADERS_TOO_LARGE');
    assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
  } finally {
    await h.close();
  }
});

test('a slow-loris client holding a half-sent request gets 408 REQUEST_TIMEOUT; others are served meanwhile', async () => {
  const h = await startInProcess({ store: { type: 'memory' }, limits: { headersTimeoutSeconds: 1, requestTimeoutSeconds: 2 } });
  const loris = rawClient(h.url);
  const drip = setInterval(() => loris.socket.write('x-drip: 1\r\n'), 100);
  try {
    loris.socket.write('GET /healthz HTTP/1.1\r\nHost: herald\r\n');
    // while it dribbles, everyone else is answered
    for (let i = 0; i < 5; i++) assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
    await waitFor(() => loris.state.closed, 5_000, 'the half-sent request to be cut off');
    assert.match(loris.state.received, /^HTTP\/1\.1 408/);
    assert.match(loris.state.received, /"code":"REQUEST_TIMEOUT"/);
  } finally {
    clearInterval(drip);
    loris.socket.destroy();
    await h.close();
  }
});

test('a body sent too slowly is cut off by the request timeout', async () => {
  const h = await startInProcess({ store: { type: 'memory' }, limits: { headersTimeoutSeconds: 1, requestTimeoutSeconds: 1 } });
  const slow = rawClient(h.url);
  const drip = setInterval(() => slow.socket.write('1'), 100);
  try {
    slow.socket.write('POST /v1/publish HTTP/1.1\r\nHost: herald\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n');
    await waitFor(() => slow.state.closed, 5_000, 'the slow body to be cut off');
    assert.match(slow.state.received, /^HTTP\/1\.1 408/);
  } finally {
    clearInterval(drip);
    slow.socket.destroy();
    await h.close();
  }
});
