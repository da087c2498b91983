import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import WebSocket from 'ws';
import { startInProcess, waitFor } from '../helpers/herald.js';

/**
 * Every byte Herald queues to a connection counts against its outgoing bound, not only events: a
 * client that never reads but keeps sending frames that each earn a reply (bad ops, pings) must
 * be cut off as slow at the bound, and a reader that makes no progress is cut off whatever it
 * sends (unsolicited pongs prove nothing: liveness is judged by what it reads).
 */

const BOUND = 64 * 1024;
/** One reply frame (op, code, message, a 128-character ref) and the close frame after it. */
const ONE_FRAME = 1024;
/** Upper bound on the flood, so the test ends even when Herald never cuts the client off. */
const FLOOD_SECONDS = 30;

/** RFC 6455 5.2 opcodes. */
const TEXT = 0x1;
const PING = 0x9;
const PONG = 0xa;

/** A client frame (RFC 6455 5.3: masked), final, with a payload under 64 KiB. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff]);
  const mask = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < len; i++) body[i]! ^= mask[i % 4]!;
  return Buffer.concat([head, mask, body]);
}

/**
 * A WebSocket client on a raw TCP socket that completes the handshake and then never reads
 * again (`ws` resumes a paused socket on its own, so it cannot play this part).
 */
async function deafClient(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.pause();
      if (head.startsWith('HTTP/1.1 101')) resolve();
      else reject(new Error(head.split('\r\n')[0]));
    };
    socket.on('data', onData);
    socket.write(
      `GET /v1/ws HTTP/1.1\r\nHost: ${hostname}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
    );
  });
  return socket;
}

/** The server side of every connection accepted from now on, to read its queued bytes. */
function serverSockets(h: Awaited<ReturnType<typeof startInProcess>>): Socket[] {
  const list: Socket[] = [];
  h.herald.app.server.on('connection', (s: Socket) => list.push(s));
  return list;
}

/**
 * Sends frames made by `next` until `done()`, the socket is gone, or FLOOD_SECONDS, waiting for
 * the client's own socket to drain so the flood measures Herald, not the client's buffer.
 * Resolves to true when it ran out of time.
 */
async function flood(socket: Socket, next: (i: number) => Buffer, done: () => boolean): Promise<boolean> {
  const deadline = Date.now() + FLOOD_SECONDS * 1000;
  for (let i = 0; !done() && !socket.destroyed; i++) {
    if (Date.now() > deadline) return true;
    socket.write(next(i));
    if (socket.writableLength > BOUND) await new Promise((r) => socket.once('drain', r));
    else if (i % 64 === 0) await new Promise((r) => setImmediate(r));
  }
  return false;
}

/**
 * Floods a deaf client's connection with `frames` (in turn) and checks that Herald cuts it off as
 * slow without ever holding more than the bound and one frame for it.
 */
async function floodIsCutOffAtTheBound(t: TestContext, frames: Buffer[]): Promise<void> {
  const h = await startInProcess({
    store: { type: 'memory' },
    limits: { outgoingBufferBytes: BOUND },
    websocket: { pingIntervalSeconds: 3_600 },
  });
  t.after(() => h.close());
  const servers = serverSockets(h);
  const socket = await deafClient(h.url);
  t.after(() => socket.destroy());
  const server = await waitFor(() => servers[0], 5_000, 'the server side of the socket');

  // The largest number of bytes Herald ever held for this client, read at every turn of the loop
  // (while the client reads nothing, what is queued only grows until the connection is cut).
  let maxQueued = 0;
  let sampling = true;
  const sample = () => {
    maxQueued = Math.max(maxQueued, server.writableLength);
    if (sampling) setImmediate(sample);
  };
  sample();
  t.after(() => (sampling = false));

  const metrics = h.herald.metrics;
  const ranOut = await flood(socket, (i) => frames[i % frames.length]!, () => metrics.slowDisconnectCount('ws') > 0);
  sampling = false;
  assert.equal(metrics.slowDisconnectCount('ws'), 1, `cut off as slow (ran out of time: ${ranOut}; queued ${maxQueued} bytes)`);
  assert.ok(maxQueued <= BOUND + ONE_FRAME, `Herald queued ${maxQueued} bytes for a client bounded at ${BOUND}`);
  await waitFor(() => metrics.connectionCount('ws') === 0, 10_000, 'the connection to be gone');

  // When it reads again it learns why, if the close frame reached it before the grace ran out:
  // a close frame (opcode 0x8) with code 4000, or the socket simply ends.
  const CLOSE_4000 = Buffer.from([0x88, 0x00, 0x0f, 0xa0]); // the length byte is compared apart
  let tail = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => (tail = Buffer.concat([tail, d]).subarray(-256)));
  const ended = new Promise((r) => socket.once('close', r));
  socket.resume();
  await ended;
  const at = tail.lastIndexOf(0x88);
  if (at >= 0 && at + 4 <= tail.length) {
    assert.deepEqual([tail[at], tail[at + 2], tail[at + 3]], [CLOSE_4000[0], CLOSE_4000[2], CLOSE_4000[3]], 'close code 4000');
  }
}

test('a client that never reads but sends bad ops and unsolicited pongs is cut off at the bound, which replies never pass', (t) =>
  floodIsCutOffAtTheBound(t, [
    clientFrame(TEXT, Buffer.from(JSON.stringify({ op: 'x'.repeat(64), ref: 'r'.repeat(128) }))),
    clientFrame(TEXT, Buffer.from('{not json')),
    clientFrame(PONG, Buffer.alloc(0)),
  ]));

test('a client that never reads but sends pings is cut off at the bound: the pongs it is owed count too', (t) =>
  floodIsCutOffAtTheBound(t, [clientFrame(PING, Buffer.alloc(125))]));

test('unsolicited pongs do not keep a reader that reads nothing alive', async (t) => {
  const h = await startInProcess({
    store: { type: 'memory' },
    limits: { outgoingBufferBytes: BOUND },
    websocket: { pingIntervalSeconds: 0.2 },
  });
  t.after(() => h.close());
  const socket = await deafClient(h.url);
  t.after(() => socket.destroy());
  await waitFor(() => h.herald.metrics.connectionCount('ws') === 1);
  // Pongs with every payload a client could guess without reading Herald's pings.
  const guesses = [Buffer.alloc(0), Buffer.alloc(8), Buffer.from('1'), Buffer.from('ping')].map((p) => clientFrame(PONG, p));
  const ranOut = await flood(socket, (i) => guesses[i % guesses.length]!, () => h.herald.metrics.connectionCount('ws') === 0);
  assert.equal(ranOut, false, `still connected after ${FLOOD_SECONDS} s of pongs`);
  await waitFor(() => h.herald.metrics.connectionCount('ws') === 0, 10_000, 'the deaf client to be dropped');
});

test('a client that reads keeps answering pings and stays connected', async (t) => {
  const h = await startInProcess({ store: { type: 'memory' }, websocket: { pingIntervalSeconds: 0.2 } });
  t.after(() => h.close());
  const ws = new WebSocket(h.url.replace('http', 'ws') + '/v1/ws');
  t.after(() => ws.close());
  let pings = 0;
  ws.on('ping', () => pings++);
  await new Promise((r) => ws.once('open', r));
  // Five pings answered (by the client's automatic pong, which echoes the payload) and still open.
  await waitFor(() => pings >= 5, 20_000, 'five pings');
  assert.equal(ws.readyState, ws.OPEN);
  assert.equal(h.herald.metrics.connectionCount('ws'), 1);
});
