import { connect as netConnect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { serveRpc } from './bench-ipc.js';
import { ChunkedDecoder, LatencyHistogram, now, scanPayloads, wsSubscribe, type ServerApi, type Transport, type WorkerStats } from './bench-protocol.js';

/**
 * A subscriber process: holds up to thousands of SSE or WebSocket connections and measures what
 * they receive. It is made to cost little CPU, since it shares two cores with the server: SSE is
 * read from raw sockets (no HTTP client, no SSE parser: one native `indexOf` per payload), WebSocket
 * likewise (frames walked by their headers, no WebSocket library), every socket reads into one
 * shared buffer (`onread`, no stream per socket), and nothing is JSON-parsed.
 */

/** Connection attempts in flight per worker: below the server's listen backlog (511). */
const CONNECT_CONCURRENCY = 64;
/** A connection that is not ready after this long counts as failed. */
const CONNECT_TIMEOUT_MS = 30_000;
const HEADER_END = Buffer.from('\r\n\r\n');
const NONE = new Uint8Array(0);

interface Conn {
  /** Payloads of the current window seen on this connection, by number - window start. */
  seen: Uint8Array;
  probe: number;
  open: boolean;
  close(): void;
}

const conns: Conn[] = [];
let windowStart = Number.POSITIVE_INFINITY;
let hist = new LatencyHistogram();
let windowCount = 0;
let received = 0;
let duplicates = 0;
let dropped = 0;
let firstAt = 0;
let lastAt = 0;

function onPayload(c: Conn, t: number, n: number, at: number): void {
  if (n < 0) {
    if (-n > c.probe) c.probe = -n;
    return;
  }
  const i = n - windowStart;
  if (i < 0 || i >= windowCount) return;
  // Concurrent publishes reach the log in any order, so payload numbers are not log order:
  // count each one once per connection, and count repeats.
  if (c.seen[i] === 1) {
    duplicates++;
    return;
  }
  c.seen[i] = 1;
  received++;
  hist.record(at - t);
  if (firstAt === 0) firstAt = at;
  lastAt = at;
}

function onClosed(c: Conn): void {
  if (!c.open) return;
  c.open = false;
  if (windowStart !== Number.POSITIVE_INFINITY) dropped++;
}

/** Bytes of the one read buffer every socket of this process reads into (see `reader`). */
const READ_BUFFER_BYTES = 65_536;
const readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);

/**
 * Reads a socket with Node's `onread` option: the kernel's bytes land in one buffer shared by
 * every connection of the process and go straight to `onChunk`, with no stream machinery, no
 * Buffer and no 'data' event per read. `onChunk` must copy what it keeps (it does: the header
 * and a payload cut in two are copied).
 */
function reader(onChunk: (chunk: Buffer) => void): { buffer: Buffer; callback: (n: number, buf: Buffer) => boolean } {
  return {
    buffer: readBuffer,
    callback: (n, buf) => {
      onChunk(buf.subarray(0, n));
      return true;
    },
  };
}

/**
 * An SSE subscriber on a raw socket: status line checked, then payloads scanned. A peer's
 * chunked body (Centrifugo's) is de-chunked first (`ChunkedDecoder`): its chunk boundaries may
 * fall inside a payload.
 */
function openSse(url: URL, api: ServerApi, localAddress: string | undefined, ready: (err?: Error) => void): Conn {
  const c: Conn = { seen: NONE, probe: 0, open: false, close: () => socket.destroy() };
  let head: Buffer | undefined = Buffer.alloc(0);
  let pending: Buffer | undefined;
  let chunked: ChunkedDecoder | undefined;
  const found = (t: number, n: number) => onPayload(c, t, n, at);
  let at = 0;
  const scan = (data: Buffer) => {
    const buf = pending ? Buffer.concat([pending, data]) : data;
    const keep = scanPayloads(buf, found);
    pending = keep < buf.length ? Buffer.from(buf.subarray(keep)) : undefined;
  };
  const onChunk = (chunk: Buffer) => {
    at = now();
    if (head) {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf(HEADER_END);
      if (end < 0) return;
      const status = head.toString('latin1', 0, head.indexOf(13));
      if (!/^HTTP\/1\.[01] 200/.test(status)) {
        socket.destroy();
        ready(new Error(`SSE answered "${status}"`));
        return;
      }
      if (api !== 'herald' && /\r\ntransfer-encoding:\s*chunked/i.test(head.toString('latin1', 0, end))) chunked = new ChunkedDecoder();
      chunk = head.subarray(end + HEADER_END.length);
      head = undefined;
      c.open = true;
      ready();
    }
    if (chunked) chunked.feed(chunk, scan);
    else scan(chunk);
  };
  const socket: Socket = netConnect({ host: url.hostname, port: Number(url.port), ...(localAddress ? { localAddress } : {}), onread: reader(onChunk) }, () => {
    socket.write(
      `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n\r\n`,
    );
  });
  socket.on('error', (err) => {
    if (!c.open) ready(err);
  });
  // A server out of file descriptors accepts and closes at once (libuv's EMFILE guard): a
  // refusal, reported now instead of after CONNECT_TIMEOUT_MS.
  socket.on('close', () => (c.open ? onClosed(c) : ready(new Error('closed before the stream opened'))));
  return c;
}

/**
 * A WebSocket subscriber on a raw socket (RFC 6455): the handshake, one masked subscribe frame,
 * then the server's unmasked frames are walked by their headers and text payloads scanned, as
 * the SSE reader does. Pings are answered with pongs so the server keeps the connection. No
 * WebSocket library: on 2 shared cores the client's parsing cost would otherwise set the pace.
 * Ready on the first frame after the handshake (the subscribe ack). Peers differ only in the
 * subscribe step (`wsSubscribe`): nchan subscribes by URL and is ready at the upgrade;
 * Centrifugo takes the connect request in the URL and is ready on its connect push.
 */
function openWs(url: URL, api: ServerApi, channel: string, localAddress: string | undefined, ready: (err?: Error) => void): Conn {
  const subscribe = wsSubscribe(api, channel);
  const c: Conn = { seen: NONE, probe: 0, open: false, close: () => socket.destroy() };
  let head: Buffer | undefined = Buffer.alloc(0);
  let pending: Buffer | undefined;
  let at = 0;
  const found = (t: number, n: number) => onPayload(c, t, n, at);
  const onChunk = (chunk: Buffer) => {
    at = now();
    if (head) {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf(HEADER_END);
      if (end < 0) return;
      const status = head.toString('latin1', 0, head.indexOf(13));
      if (!/^HTTP\/1\.1 101/.test(status)) {
        socket.destroy();
        ready(new Error(`WebSocket upgrade answered "${status}"`));
        return;
      }
      chunk = head.subarray(end + HEADER_END.length);
      head = undefined;
      if (subscribe.hello !== undefined) socket.write(clientFrame(0x1, Buffer.from(subscribe.hello)));
      if (subscribe.liveOnUpgrade) {
        c.open = true;
        ready();
      }
    }
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      if (buf.length - pos < 2) break;
      const opcode = buf[pos]! & 0x0f;
      let len = buf[pos + 1]! & 0x7f;
      let hdr = 2;
      if (len === 126) {
        if (buf.length - pos < 4) break;
        len = buf.readUInt16BE(pos + 2);
        hdr = 4;
      } else if (len === 127) {
        if (buf.length - pos < 10) break;
        len = Number(buf.readBigUInt64BE(pos + 2));
        hdr = 10;
      }
      if (buf.length - pos < hdr + len) break;
      const payload = buf.subarray(pos + hdr, pos + hdr + len);
      pos += hdr + len;
      if (opcode === 0x1) {
        if (!c.open) {
          c.open = true;
          ready();
        }
        scanPayloads(payload, found);
      } else if (opcode === 0x9) {
        socket.write(clientFrame(0xa, payload));
      } else if (opcode === 0x8) {
        socket.end();
      }
    }
    pending = pos < buf.length ? Buffer.from(buf.subarray(pos)) : undefined;
  };
  const socket: Socket = netConnect({ host: url.hostname, port: Number(url.port), ...(localAddress ? { localAddress } : {}), onread: reader(onChunk) }, () => {
    socket.write(
      `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
        'Sec-WebSocket-Version: 13\r\n\r\n',
    );
  });
  socket.on('error', (err) => {
    if (!c.open) ready(err);
  });
  // A server out of file descriptors accepts and closes at once (libuv's EMFILE guard): a
  // refusal, reported now instead of after CONNECT_TIMEOUT_MS.
  socket.on('close', () => (c.open ? onClosed(c) : ready(new Error('closed before the stream opened'))));
  return c;
}

/** A client frame: FIN, the opcode, a short payload (< 126 bytes), masked as RFC 6455 5.3 requires. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const out = Buffer.alloc(6 + payload.length);
  out[0] = 0x80 | opcode;
  out[1] = 0x80 | payload.length;
  mask.copy(out, 2);
  for (let i = 0; i < payload.length; i++) out[6 + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}

interface ConnectArgs {
  transport: Transport;
  /** The server's API (Herald's by default): how a WebSocket subscriber subscribes. */
  api?: ServerApi | undefined;
  /** Full URL of the stream (SSE) or socket (WebSocket). */
  url: string;
  channel: string;
  count: number;
  /**
   * Source address of the connections. One source address has ~28,000 ephemeral ports toward
   * one server address and port (net.ipv4.ip_local_port_range); on loopback every 127.0.0.0/8
   * address is local, so processes with addresses of their own may open more than that together.
   */
  localAddress?: string | undefined;
}

async function connectMany(a: ConnectArgs): Promise<{ open: number; failed: number; error?: string }> {
  const url = new URL(a.url);
  let failed = 0;
  let error: string | undefined;
  let started = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      let settled = false;
      const done = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          failed++;
          error ??= err.message;
          c.close();
        } else conns.push(c);
        resolve();
      };
      const timer = setTimeout(() => done(new Error('not ready in time')), CONNECT_TIMEOUT_MS);
      const c = a.transport === 'sse' ? openSse(url, a.api ?? 'herald', a.localAddress, done) : openWs(url, a.api ?? 'herald', a.channel, a.localAddress, done);
    });
  const lanes = Array.from({ length: Math.min(CONNECT_CONCURRENCY, a.count) }, async () => {
    while (started < a.count) {
      started++;
      await one();
    }
  });
  await Promise.all(lanes);
  return { open: openCount(), failed, ...(error ? { error } : {}) };
}

function openCount(): number {
  let n = 0;
  for (const c of conns) if (c.open) n++;
  return n;
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

serveRpc({
  connect: (a: ConnectArgs) => connectMany(a),
  /** Closes `count` connections (the newest first) and waits until they are gone. */
  async close(a: { count: number }) {
    const gone = conns.splice(Math.max(0, conns.length - a.count));
    for (const c of gone) {
      c.open = false;
      c.close();
    }
    return { open: openCount() };
  },
  /** Connections that have seen probe `id` (or a later one). */
  probe(a: { id: number }) {
    let n = 0;
    for (const c of conns) if (c.open && c.probe >= a.id) n++;
    return { seen: n, open: openCount() };
  },
  /** Starts a measured window: payloads numbered from `start` on count. */
  begin(a: { start: number; count: number }) {
    windowStart = a.start;
    windowCount = a.count;
    hist = new LatencyHistogram();
    received = duplicates = dropped = firstAt = lastAt = 0;
    for (const c of conns) c.seen = new Uint8Array(a.count);
    return { open: openCount() };
  },
  progress: () => ({ received, lastAt, open: openCount() }),
  /** CPU time this process has used so far (user + system), in milliseconds. */
  cpu: () => cpuMs(),
  stats(): WorkerStats {
    const s: WorkerStats = {
      open: openCount(),
      received,
      duplicates,
      dropped,
      firstAt,
      lastAt,
      histogram: hist.toSparse(),
    };
    windowStart = Number.POSITIVE_INFINITY;
    windowCount = 0;
    for (const c of conns) c.seen = NONE;
    return s;
  },
});
