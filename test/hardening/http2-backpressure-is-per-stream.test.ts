import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPLAY_PAGE_EVENTS } from '../../src/core/limits.js';
import { selfSignedCertificate } from '../helpers/certificate.js';
import { startInProcess, waitFor } from '../helpers/herald.js';
import { hasOpenssl } from '../helpers/nginx.js';
import { needService } from '../helpers/service.js';

/** bytes: the outgoing backlog bound of the Herald under test. */
const BOUND = 64 * 1024;
/** bytes: the client's connection-level window, like a browser's (Chromium: 15 MiB), far above one stream's. */
const CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024;

/**
 * Over HTTP/2 one connection carries many streams, each flow-controlled on its own (RFC 9113
 * 5.2): a stream whose reader stopped must be cut off at its own backlog bound, and must not hold
 * back another stream of the same connection, which gets every event meanwhile.
 */
test('a stuck HTTP/2 SSE stream is cut off as slow; a fast stream on the same connection gets every event', async (t) => {
  if (!needService(t, hasOpenssl(), 'openssl', 'apt-get install -y openssl')) return;
  const dir = mkdtempSync(join(tmpdir(), 'herald-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cert = selfSignedCertificate(dir);
  const h = await startInProcess({ tls: { cert: cert.certFile, key: cert.keyFile }, limits: { outgoingBufferBytes: BOUND } });
  const session = connect(h.url, { ca: cert.ca });
  session.on('error', () => {});
  // The client goes first: a graceful close waits for the streams it still holds open.
  t.after(async () => {
    session.destroy();
    await h.close();
  });
  await new Promise<void>((resolve) => session.once('connect', () => resolve()));
  session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);

  // Stuck: reads nothing, so its stream window (64 KiB) fills and Herald's side backs up.
  const stuck = session.request({ ':path': '/v1/stream?channel=load' });
  stuck.pause();
  let stuckClosed = false;
  stuck.on('close', () => (stuckClosed = true));
  stuck.on('error', () => {});
  // Fast: counts the events it reads.
  const fast = session.request({ ':path': '/v1/stream?channel=load' });
  let received = 0;
  let buf = '';
  fast.setEncoding('utf8');
  fast.on('data', (c: string) => {
    buf += c;
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      if (/^id: /m.test(buf.slice(0, i))) received++;
      buf = buf.slice(i + 2);
    }
  });
  await waitFor(() => h.herald.metrics.connectionCount('sse') === 2, 10_000, 'both streams');

  const chunk = 'x'.repeat(16 * 1024);
  let published = 0;
  let batches = 0;
  // Bounded: at most 100 batches of 16 x 16 KiB.
  while (batches < 100 && h.herald.metrics.connectionCount('sse') > 1) {
    const res = await fetchPublish(session, Array.from({ length: 16 }, () => ({ channel: 'load', data: chunk })));
    assert.equal(res, 201);
    published += 16;
    batches++;
    await waitFor(() => received >= published, 10_000, `the fast stream to read ${published} events (has ${received})`);
  }
  assert.equal(h.herald.metrics.connectionCount('sse'), 1, 'the stuck stream was cut off');
  assert.ok(batches > 1, 'the stuck stream lasted past the first batch (its window and the bound took some)');
  assert.equal(received, published);
  // The stuck client learns its stream was reset once it reads again.
  stuck.resume();
  await waitFor(() => stuckClosed, 10_000, 'the stuck stream to be closed');
  assert.equal(session.closed || session.destroyed, false, 'the connection itself stays open');
});

/** POST /v1/publish on the same HTTP/2 connection; resolves to the status. */
function fetchPublish(session: import('node:http2').ClientHttp2Session, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': '/v1/publish', 'content-type': 'application/json' });
    req.on('response', (headers) => {
      req.resume();
      req.on('end', () => resolve(Number(headers[':status'])));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/**
 * A replay longer than the backlog bound is paced by the client's reading (Hub reads the next
 * page once the stream's backlog drains), so it reaches a client that reads at its own pace
 * whole, instead of being cut off as slow. Over HTTP/2 what drains is the stream, which its
 * window (64 KiB here) holds back, not the connection's socket, which is idle meanwhile. Pages
 * (REPLAY_PAGE_EVENTS) of ~130 KiB each stay under the bound; five of them do not.
 */
test('an HTTP/2 stream gets a replay several times the backlog bound whole, never cut off as slow', async (t) => {
  if (!needService(t, hasOpenssl(), 'openssl', 'apt-get install -y openssl')) return;
  const dir = mkdtempSync(join(tmpdir(), 'herald-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cert = selfSignedCertificate(dir);
  const h = await startInProcess({ tls: { cert: cert.certFile, key: cert.keyFile }, limits: { outgoingBufferBytes: 4 * BOUND } });
  const session = connect(h.url, { ca: cert.ca });
  session.on('error', () => {});
  t.after(async () => {
    session.destroy();
    await h.close();
  });
  const chunk = 'y'.repeat(200);
  const total = 5 * REPLAY_PAGE_EVENTS;
  for (let i = 0; i < total; i += REPLAY_PAGE_EVENTS) {
    const batch = Array.from({ length: REPLAY_PAGE_EVENTS }, () => ({ channel: 'replay', data: chunk }));
    assert.equal(await fetchPublish(session, batch), 201);
  }
  const stream = session.request({ ':path': '/v1/stream?channel=replay&lastEventId=0' });
  let received = 0;
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (c: string) => {
    buf += c;
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      if (/^id: /m.test(buf.slice(0, i))) received++;
      buf = buf.slice(i + 2);
    }
  });
  await waitFor(() => received >= total || stream.closed, 30_000, `the replay (${received} of ${total})`);
  assert.equal(received, total);
  assert.equal(h.herald.metrics.slowDisconnectCount('sse'), 0);
  assert.equal(stream.closed, false);
  stream.close();
});
