import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { WRITE_SLICE_SUBSCRIBERS } from '../src/core/limits.js';
import { listen, takePublish } from './baseline-server.js';

/**
 * The floor: the least work a Node.js server can do to serve the benchmark's scenarios, so the
 * figures show what this machine allows at all, whatever the server. No log, no fsync, no
 * channels, no validation, no backpressure, no HTTP framing after the response head: a publish
 * is framed once (SSE `data:` lines, or an unmasked WebSocket text frame) and appended to an
 * array; subscribers are raw sockets, each written once per round with every frame it has not
 * had yet (the frames of a round shared by all who need the same ones), in slices with the event
 * loop turning between them, as Herald's hub writes. What it leaves out is what Herald must
 * do; what it keeps is what any server pays: one loopback TCP write per subscriber per round.
 *
 * `GET /v1/stream` (SSE) and `GET /v1/ws` (WebSocket, RFC 6455 handshake; the first client frame
 * is answered with an ack, later ones are ignored) on the same port; `POST /v1/publish` takes
 * `{ "data" }` and answers 200 once framed. Env: PORT, HOST. Prints `{"msg":"listening","url"}`.
 * A benchmark instrument only: frames are never dropped, so memory grows with the run.
 */

interface Client {
  socket: Socket;
  ws: boolean;
  /** Index of the first frame this client has not been written. */
  next: number;
  closed: boolean;
}

const sseFrames: Buffer[] = [];
const wsFrames: Buffer[] = [];
let clients: Client[] = [];
let round: Client[] | undefined;
let roundPos = 0;
let roundHead = 0;
/** Bytes of frames [from, head) per transport, for the current head only. */
let joined = new Map<string, Buffer>();
let joinedHead = 0;

function framesFrom(c: Client, head: number): Buffer {
  if (joinedHead !== head) {
    joined = new Map();
    joinedHead = head;
  }
  const key = `${c.ws ? 'w' : 's'}${c.next}`;
  let b = joined.get(key);
  if (!b) {
    const frames = c.ws ? wsFrames : sseFrames;
    b = c.next === head - 1 ? frames[c.next]! : Buffer.concat(frames.slice(c.next, head));
    joined.set(key, b);
  }
  return b;
}

function startRound(): void {
  if (round) return;
  clients = clients.filter((c) => !c.closed);
  round = clients;
  roundPos = 0;
  roundHead = sseFrames.length;
  writeSlice();
}

function writeSlice(): void {
  const r = round!;
  const head = sseFrames.length;
  const end = Math.min(r.length, roundPos + WRITE_SLICE_SUBSCRIBERS);
  for (let i = roundPos; i < end; i++) {
    const c = r[i]!;
    if (c.closed || c.next >= head) continue;
    c.socket.write(framesFrom(c, head));
    c.next = head;
  }
  roundPos = end;
  if (end < r.length) {
    setImmediate(writeSlice);
    return;
  }
  round = undefined;
  // Clients written early in the round have not had what came after the round started.
  if (sseFrames.length > roundHead) startRound();
}

function wsTextFrame(payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x81, len]) : len < 65_536 ? Buffer.from([0x81, 126, len >> 8, len & 255]) : null;
  if (!head) throw new Error('frame too large for the floor server');
  return Buffer.concat([head, payload]);
}

function addClient(socket: Socket, ws: boolean): void {
  const c: Client = { socket, ws, next: sseFrames.length, closed: false };
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  // The HTTP server allows half-open sockets; a client that has gone is closed here, not written.
  socket.on('end', () => socket.destroy());
  socket.on('close', () => (c.closed = true));
  clients.push(c);
}

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'POST' && path === '/v1/publish') {
    takePublish(req, res, (text) => {
      sseFrames.push(Buffer.from(`data: ${text}\n\n`));
      wsFrames.push(wsTextFrame(Buffer.from(text)));
      startRound();
    });
    return;
  }
  if (req.method === 'GET' && path === '/v1/stream') {
    // The response head by hand, then the socket is the stream (no chunked framing: the body
    // ends when the connection does).
    const socket = req.socket;
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n: connected\n\n');
    addClient(socket, false);
    return;
  }
  res.writeHead(404).end();
});

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

server.on('upgrade', (req, socket: Socket) => {
  const key = req.headers['sec-websocket-key'];
  if ((req.url ?? '').split('?')[0] !== '/v1/ws' || typeof key !== 'string') {
    socket.destroy();
    return;
  }
  const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  socket.once('data', () => {
    socket.write(wsTextFrame(Buffer.from('{"op":"ack"}')));
    addClient(socket, true);
    socket.on('data', () => undefined);
  });
});

listen(server);
