import { parsePosition } from '../src/core/position.js';
import { connect as netConnect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { serveRpc } from './bench-ipc.js';

/**
 * A soak subscriber process: holds SSE and WebSocket connections that churn (each lives a random
 * time, then closes and reconnects, resuming from the last id it saw: SSE `Last-Event-ID`,
 * WebSocket `since`), and checks what each receives. Every event of the soak is on one channel,
 * so a connection must see consecutive ids: a repeat is a duplicate, a jump is a suspected gap
 * (the orchestrator asks the log whether anything lay in between).
 */

/** Connection attempts in flight per worker: below the server's listen backlog (511). */
const CONNECT_CONCURRENCY = 32;
/** A connection not open after this long counts as failed and is tried again. */
const CONNECT_TIMEOUT_MS = 30_000;
/** Suspected gaps kept for the orchestrator to check (a bound on memory, not on what is counted). */
const MAX_SUSPECTS = 1_000;

export interface SoakStartArgs {
  url: string;
  channel: string;
  sse: number;
  ws: number;
  minLifeMs: number;
  maxLifeMs: number;
  /** Share of reconnects that resume from `deepResumeEvents` before the last id seen (a replay). */
  deepResumeShare: number;
  deepResumeEvents: number;
}

export interface SoakStats {
  open: number;
  events: number;
  duplicates: number;
  suspects: [number, number][];
  suspectCount: number;
  resets: number;
  reconnects: number;
  deepResumes: number;
  serverCloses: number;
  connectFailures: number;
  lastError: string | undefined;
}

interface Client {
  transport: 'sse' | 'ws';
  last: number | undefined;
  open: boolean;
  /** Closed on purpose (churn or stop), not by the server. */
  leaving: boolean;
  close: () => void;
}

const clients: Client[] = [];
const s: SoakStats = {
  open: 0,
  events: 0,
  duplicates: 0,
  suspects: [],
  suspectCount: 0,
  resets: 0,
  reconnects: 0,
  deepResumes: 0,
  serverCloses: 0,
  connectFailures: 0,
  lastError: undefined,
};
let args: SoakStartArgs;
let stopping = false;
const queue: Client[] = [];
let connecting = 0;

function onId(c: Client, id: number): void {
  s.events++;
  if (c.last !== undefined) {
    if (id <= c.last) s.duplicates++;
    else if (id !== c.last + 1) {
      s.suspectCount++;
      if (s.suspects.length < MAX_SUSPECTS) s.suspects.push([c.last, id]);
    }
  }
  if (c.last === undefined || id > c.last) c.last = id;
}

/** Where a reconnect resumes: the last id seen, or now and then far before it (a replay). */
function resumeFrom(c: Client): number | undefined {
  if (c.last === undefined) return undefined;
  if (Math.random() < args.deepResumeShare) {
    s.deepResumes++;
    c.last = Math.max(0, c.last - args.deepResumeEvents);
  }
  return c.last;
}

function scheduleLeave(c: Client): void {
  const life = args.minLifeMs + Math.random() * (args.maxLifeMs - args.minLifeMs);
  const timer = setTimeout(() => {
    if (!c.open || stopping) return;
    c.leaving = true;
    c.close();
  }, life);
  timer.unref();
}

function closed(c: Client): void {
  const wasOpen = c.open;
  c.open = false;
  if (wasOpen) s.open--;
  if (stopping) return;
  if (wasOpen && !c.leaving) s.serverCloses++;
  if (wasOpen) s.reconnects++;
  c.leaving = false;
  enqueue(c);
}

function enqueue(c: Client): void {
  queue.push(c);
  pump();
}

function pump(): void {
  while (!stopping && connecting < CONNECT_CONCURRENCY && queue.length > 0) {
    const c = queue.shift()!;
    connecting++;
    let settled = false;
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      connecting--;
      if (err) {
        s.connectFailures++;
        s.lastError = err.message;
        c.close();
        // Tried again later, so a refused burst does not spin.
        setTimeout(() => enqueue(c), 1_000).unref();
      } else {
        c.open = true;
        s.open++;
        scheduleLeave(c);
      }
      pump();
    };
    const timer = setTimeout(() => done(new Error('not open in time')), CONNECT_TIMEOUT_MS);
    if (c.transport === 'sse') openSse(c, done);
    else openWs(c, done);
  }
}

/** SSE on a raw socket: the request with `Last-Event-ID`, then `id:` lines read as they come. */
function openSse(c: Client, ready: (err?: Error) => void): void {
  const url = new URL(args.url);
  const from = resumeFrom(c);
  let head = '';
  let started = false;
  let tail = '';
  const socket: Socket = netConnect({ host: url.hostname, port: Number(url.port) }, () => {
    socket.write(
      `GET /v1/stream?channel=${args.channel} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n` +
        (from === undefined ? '' : `Last-Event-ID: ${from}\r\n`) +
        '\r\n',
    );
  });
  c.close = () => socket.destroy();
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    if (!started) {
      head += chunk;
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!/^HTTP\/1\.[01] 200/.test(head)) {
        ready(new Error(`SSE answered "${head.slice(0, head.indexOf('\r'))}"`));
        return;
      }
      started = true;
      chunk = head.slice(end + 4);
      head = '';
      ready();
    }
    const lines = (tail + chunk).split('\n');
    tail = lines.pop()!;
    for (const line of lines) {
      if (line.startsWith('id: ')) onId(c, parsePosition(line.slice(4)).seq);
      else if (line.startsWith('event: herald.reset')) s.resets++;
    }
  });
  socket.on('error', (err) => {
    if (!started) ready(err);
  });
  socket.on('close', () => {
    if (!started) ready(new Error('closed before the stream started'));
    else closed(c);
  });
}

const EVENT_PREFIX = '{"op":"event","id":"';

/** WebSocket with the `ws` package: subscribe with `since`, then event frames read by their id. */
function openWs(c: Client, ready: (err?: Error) => void): void {
  const from = resumeFrom(c);
  const ws = new WebSocket(`${args.url.replace(/^http/, 'ws')}/v1/ws`);
  let started = false;
  c.close = () => ws.terminate();
  ws.on('open', () => {
    ws.send(JSON.stringify({ op: 'subscribe', channel: args.channel, ref: 1, ...(from === undefined ? {} : { since: String(from) }) }));
  });
  ws.on('message', (data: Buffer) => {
    const text = data.toString();
    if (text.startsWith(EVENT_PREFIX)) {
      onId(c, parsePosition(text.slice(EVENT_PREFIX.length, text.indexOf('"', EVENT_PREFIX.length))).seq);
      return;
    }
    const m = JSON.parse(text) as { op?: string; ref?: number; code?: string };
    if (m.op === 'ack' && m.ref === 1 && !started) {
      started = true;
      ready();
    } else if (m.op === 'reset') s.resets++;
    else if (m.op === 'error' && !started) ready(new Error(`subscribe refused: ${m.code}`));
  });
  ws.on('error', (err) => {
    if (!started) ready(err);
  });
  ws.on('close', () => {
    if (!started) ready(new Error('closed before the subscription'));
    else closed(c);
  });
}

serveRpc({
  start(a: SoakStartArgs) {
    args = a;
    for (let i = 0; i < a.sse + a.ws; i++) {
      const c: Client = { transport: i < a.sse ? 'sse' : 'ws', last: undefined, open: false, leaving: false, close: () => {} };
      clients.push(c);
      enqueue(c);
    }
    return { clients: clients.length };
  },
  stats: (): SoakStats => ({ ...s, suspects: s.suspects.slice() }),
  /** Open connections whose last id is below `id` (they have not caught up with the head). */
  behind(a: { id: number }) {
    let n = 0;
    for (const c of clients) if (c.open && (c.last ?? 0) < a.id) n++;
    return { behind: n, open: s.open };
  },
  /** Stops the churn and closes every connection. */
  stop() {
    stopping = true;
    for (const c of clients) c.close();
    return { closed: clients.length };
  },
});
