import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { request, type RequestOptions } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import WebSocket from 'ws';
import { selfSignedCertificate, type SelfSigned } from '../helpers/certificate.js';
import { spawnHerald, waitFor, type SpawnedHerald } from '../helpers/herald.js';
import { hasOpenssl } from '../helpers/nginx.js';
import { needService } from '../helpers/service.js';
import { packageRoot } from '../../src/http/routes/pages.js';

/** milliseconds a start that fails may take to say so, on a busy machine (a killed one fails the test). */
const START_TIMEOUT_MS = 60_000;

/*
 * Streams open with `lastEventId=0` on channels of their own: they then get every event of the
 * channel, however soon after the response head it is published.
 */

/**
 * `tls` in config: Herald serves HTTPS on its port, HTTP/2 to clients that offer it (ALPN) and
 * HTTP/1.1 to the others, with every route working over both: publish, SSE (`/v1/stream`, the
 * seed `/sse`), WebSocket (upgrades are HTTP/1.1), in one process and with `--workers`.
 */

const available = hasOpenssl();
const HOW = 'apt-get install -y openssl';
const have = (t: TestContext) => needService(t, available, 'openssl', HOW);

/** Collects the SSE events (those with an id) from chunks of a stream's body. */
function sseCollector() {
  const events: { id: string; event: string; data: string }[] = [];
  let buf = '';
  return {
    events,
    push(chunk: string) {
      buf += chunk;
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const e = { id: '', event: 'message', data: '' };
        for (const line of block.split('\n')) {
          if (line.startsWith('id: ')) e.id = line.slice(4);
          else if (line.startsWith('event: ')) e.event = line.slice(7);
          else if (line.startsWith('data: ')) e.data = line.slice(6);
        }
        if (e.data) events.push(e);
      }
    },
  };
}

/** An HTTP/1.1 request over TLS (ALPN offers only http/1.1), on a connection of its own. */
function h1(url: string, ca: Buffer, opts: RequestOptions = {}, body?: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const tls = { ca, agent: false, ALPNProtocols: ['http/1.1'] } as RequestOptions; // passed on to tls.connect
    const req = request(url, { ...tls, ...opts }, resolve);
    req.on('error', reject);
    req.end(body);
  });
}

async function text(res: IncomingMessage): Promise<string> {
  let s = '';
  for await (const chunk of res) s += chunk;
  return s;
}

/** One HTTP/2 request on `session`; resolves to its response headers and a reader of its body. */
function h2(session: ClientHttp2Session, headers: Record<string, string>, body?: string) {
  const stream = session.request(headers);
  stream.setEncoding('utf8');
  const sse = sseCollector();
  let all = '';
  stream.on('data', (c: string) => {
    all += c;
    sse.push(c);
  });
  const ended = new Promise<void>((resolve) => stream.on('close', resolve));
  stream.end(body);
  const response = new Promise<IncomingHttpHeaders>((resolve, reject) => {
    stream.once('response', resolve);
    stream.once('error', reject);
  });
  return { stream, response, events: sse.events, body: async () => (await ended, all) };
}

async function h2Publish(session: ClientHttp2Session, channel: string, data: unknown): Promise<string> {
  const r = h2(session, { ':method': 'POST', ':path': '/v1/publish', 'content-type': 'application/json' }, JSON.stringify({ channel, type: 'note', data }));
  const headers = await r.response;
  const body = await r.body();
  assert.equal(headers[':status'], 201, body);
  return (JSON.parse(body) as { id: string }).id;
}

/** The value of one `herald_connections{transport=...}` series. */
async function connections(session: ClientHttp2Session, transport: string): Promise<number> {
  const body = await h2(session, { ':path': '/metrics' }).body();
  const m = new RegExp(`^herald_connections\\{transport="${transport}"\\} (\\d+)$`, 'm').exec(body);
  return m ? Number(m[1]) : 0;
}

describe('HTTPS: HTTP/2 and HTTP/1.1 on one port', () => {
  let dir: string;
  let cert: SelfSigned;
  let herald: SpawnedHerald | undefined;
  const sessions: ClientHttp2Session[] = [];
  const session = () => {
    const s = connect(herald!.url, { ca: cert.ca });
    s.on('error', () => {}); // a session still open when Herald stops
    sessions.push(s);
    return s;
  };

  before(async () => {
    if (!available) return;
    dir = mkdtempSync(join(tmpdir(), 'herald-tls-'));
    cert = selfSignedCertificate(dir);
    herald = await spawnHerald({
      tls: { cert: cert.certFile, key: cert.keyFile },
      sources: { stripe: { provider: 'stripe', secret: 'whsec_https_test', channel: 'stripe.{type}' } },
    });
  });
  after(async () => {
    for (const s of sessions) s.destroy();
    await herald?.stop();
    if (herald) rmSync(herald.dataDir, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('an HTTP/1.1 client publishes and streams over the HTTPS port', async (t) => {
    if (!have(t)) return;
    assert.match(herald!.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const stream = await h1(`${herald!.url}/v1/stream?channel=h1.orders&lastEventId=0`, cert.ca);
    try {
      assert.equal(stream.statusCode, 200);
      assert.equal(stream.httpVersion, '1.1');
      assert.equal((stream.socket as TLSSocket).alpnProtocol, 'http/1.1');
      assert.equal(stream.headers['content-type'], 'text/event-stream; charset=utf-8');
      const sse = sseCollector();
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => sse.push(c));
      const published = await h1(`${herald!.url}/v1/publish`, cert.ca, { method: 'POST', headers: { 'content-type': 'application/json' } },
        JSON.stringify({ channel: 'h1.orders', type: 'order.paid', data: { n: 1 } }));
      assert.equal(published.statusCode, 201);
      assert.equal(published.httpVersion, '1.1');
      const { id } = JSON.parse(await text(published)) as { id: string };
      await waitFor(() => sse.events.length > 0, 10_000, 'the event over HTTP/1.1');
      assert.deepEqual(sse.events, [{ id, event: 'order.paid', data: '{"n":1}' }]);
    } finally {
      stream.destroy();
    }
  });

  test('an HTTP/2 client streams (/v1/stream, /sse) and publishes on one connection, without connection-specific headers', async (t) => {
    if (!have(t)) return;
    const s = session();
    const v1 = h2(s, { ':path': '/v1/stream?channel=h2.orders&lastEventId=0' });
    const seed = h2(s, { ':path': '/sse', 'last-event-id': '0' });
    for (const r of [v1, seed]) {
      const headers = await r.response;
      assert.equal(headers[':status'], 200);
      assert.equal(headers['content-type'], 'text/event-stream; charset=utf-8');
      // RFC 9113 8.2.2: a response with a connection-specific header is malformed.
      assert.equal(headers.connection, undefined);
      assert.equal(headers['keep-alive'], undefined);
    }
    await waitFor(async () => (await connections(s, 'sse')) === 1 && (await connections(s, 'sse_compat')) === 1, 10_000, 'both streams counted');
    // Dev mode answers publishes for a loopback host only: over HTTP/2 that is `:authority`.
    const id = await h2Publish(s, 'h2.orders', { over: 'h2' });
    const send = h2(s, { ':path': '/sse/send' });
    assert.equal(await send.body(), 'Message broadcasted');
    await waitFor(() => v1.events.length === 1 && seed.events.length === 1, 10_000, 'events on both streams');
    assert.deepEqual(v1.events, [{ id, event: 'note', data: '{"over":"h2"}' }]);
    assert.match(seed.events[0]!.data, /^New Order received at /);
    assert.equal(s.socket && (s.socket as TLSSocket).alpnProtocol, 'h2');

    // A stream the client cancels is seen as closed: its connection count (and limits) drop.
    v1.stream.close();
    seed.stream.close();
    await waitFor(async () => (await connections(s, 'sse')) === 0 && (await connections(s, 'sse_compat')) === 0, 10_000, 'the streams to be counted as closed');
  });

  test('WebSockets connect over wss (/v1/ws and the seed /ws) and receive events', async (t) => {
    if (!have(t)) return;
    const wss = herald!.url.replace(/^https/, 'wss');
    const v1 = new WebSocket(`${wss}/v1/ws`, { ca: cert.ca });
    const seed = new WebSocket(`${wss}/ws`, { ca: cert.ca });
    const frames: Record<string, any>[] = [];
    const texts: string[] = [];
    v1.on('message', (d) => frames.push(JSON.parse(d.toString()) as Record<string, any>));
    seed.on('message', (d) => texts.push(d.toString()));
    try {
      for (const ws of [v1, seed]) {
        await new Promise<void>((resolve, reject) => {
          ws.once('open', resolve);
          ws.once('error', reject);
        });
      }
      v1.send(JSON.stringify({ op: 'subscribe', channel: 'ws.orders', ref: 1 }));
      await waitFor(() => frames.find((f) => f.op === 'ack' && f.ref === 1), 10_000, 'the subscribe ack');
      const s = session();
      const id = await h2Publish(s, 'ws.orders', { over: 'wss' });
      const event = await waitFor(() => frames.find((f) => f.op === 'event' && f.id === id), 10_000, 'the event over wss');
      assert.deepEqual(event!.data, { over: 'wss' });
      assert.equal(await h2(s, { ':path': '/ws/send' }).body(), 'Message broadcasted');
      await waitFor(() => texts.length === 1, 10_000, 'the seed message over wss');
      assert.equal(texts[0], '🔔 New message at server!');
    } finally {
      v1.close();
      seed.close();
    }
  });

  test("the order demo's test webhook goes through Herald's own HTTPS endpoint", async (t) => {
    if (!have(t)) return;
    const s = session();
    const stream = h2(s, { ':path': '/v1/stream?channel=stripe.payment_intent.succeeded&lastEventId=0' });
    const r = h2(s, { ':method': 'POST', ':path': '/demo/orders/test-webhook', 'content-type': 'application/json' }, '{"kind":"succeeded"}');
    const headers = await r.response;
    const body = JSON.parse(await r.body()) as { answer: { id?: string } };
    assert.equal(headers[':status'], 200, JSON.stringify(body));
    assert.match(String(body.answer.id), /^[a-z0-9]+-\d+$/);
    await waitFor(() => stream.events.length === 1, 10_000, 'the webhook as an event');
    assert.equal(stream.events[0]!.event, 'payment_intent.succeeded');
    stream.stream.close();
  });

  // Last: it stops the shared Herald.
  test('SIGTERM ends open HTTP/2 streams and idle HTTP/2 connections, and exits 0 in time', async (t) => {
    if (!have(t)) return;
    const idle = session();
    await h2(idle, { ':path': '/healthz' }).body();
    const streaming = session();
    const open = h2(streaming, { ':path': '/v1/stream?channel=bye' });
    assert.equal((await open.response)[':status'], 200);
    const closed = new Promise<void>((resolve) => idle.once('close', resolve));
    // A session Herald left open would hold the exit until the forced one (code 1).
    assert.equal(await herald!.stop(), 0);
    await open.body();
    await closed;
  });
});

describe('HTTPS with --workers 2', () => {
  test('every worker serves HTTP/2 with the certificate; streams and publishes cross workers', async (t) => {
    if (!have(t)) return;
    const dir = mkdtempSync(join(tmpdir(), 'herald-tls-'));
    const cert = selfSignedCertificate(dir);
    const herald = await spawnHerald({ tls: { cert: cert.certFile, key: cert.keyFile } }, { args: ['--workers', '2'] });
    const sessions: ClientHttp2Session[] = [];
    try {
      assert.match(herald.url, /^https:/);
      // Each session is one connection, handed to a worker in turn: both are reached.
      const workers = new Set<string>();
      const streams: ReturnType<typeof h2>[] = [];
      for (let i = 0; i < 4; i++) {
        const s = connect(herald.url, { ca: cert.ca });
        sessions.push(s);
        const r = h2(s, { ':path': '/v1/stream?channel=w.orders&lastEventId=0' });
        const headers = await r.response;
        assert.equal(headers[':status'], 200);
        workers.add(String(headers['herald-worker']));
        streams.push(r);
      }
      assert.deepEqual(workers, new Set(['1', '2']));
      const id = await h2Publish(sessions[0]!, 'w.orders', { n: 1 });
      await waitFor(() => streams.every((r) => r.events.length === 1), 10_000, 'the event on every worker');
      for (const r of streams) assert.deepEqual(r.events, [{ id, event: 'note', data: '{"n":1}' }]);
    } finally {
      assert.equal(await herald.stop(), 0);
      for (const s of sessions) s.destroy();
      rmSync(herald.dataDir, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('TLS files are checked at start', () => {
  /** Runs `herald --config FILE [args]` as a user would, expecting it to stop; its exit code and stderr. */
  const failedStart = async (file: Record<string, unknown>, args: string[] = []) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'herald-tls-'));
    try {
      writeFileSync(join(dataDir, 'config.json'), JSON.stringify(file));
      const r = spawnSync(process.execPath, [join(packageRoot(), 'dist/src/cli/main.js'), '--config', join(dataDir, 'config.json'), ...args], {
        env: { ...process.env, PORT: '0', HOST: '127.0.0.1', HERALD_DATA_DIR: dataDir },
        encoding: 'utf8',
        timeout: START_TIMEOUT_MS,
      });
      return { code: r.status, stderr: r.stderr };
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  };

  test('a missing certificate file stops the start with one line naming tls.cert (alone and with --workers)', async (t) => {
    if (!have(t)) return;
    const dir = mkdtempSync(join(tmpdir(), 'herald-tls-'));
    try {
      const cert = selfSignedCertificate(dir);
      const missing = join(dir, 'missing.pem');
      for (const args of [[], ['--workers', '2']]) {
        const { code, stderr } = await failedStart({ tls: { cert: missing, key: cert.keyFile } }, args);
        assert.equal(code, 1);
        const lines = stderr.trimEnd().split('\n');
        assert.equal(lines.length, 1, stderr);
        assert.equal(lines[0], `herald: failed to start: cannot read tls.cert (${missing}): ENOENT: no such file or directory, open '${missing}'`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a key that is not the certificate’s stops the start naming both keys', async (t) => {
    if (!have(t)) return;
    const dir = mkdtempSync(join(tmpdir(), 'herald-tls-'));
    const other = mkdtempSync(join(tmpdir(), 'herald-tls-'));
    try {
      const cert = selfSignedCertificate(dir);
      const wrong = selfSignedCertificate(other);
      const { code, stderr } = await failedStart({ tls: { cert: cert.certFile, key: wrong.keyFile } });
      assert.equal(code, 1);
      assert.equal(stderr.trimEnd().split('\n').length, 1, stderr);
      assert.match(stderr, /^herald: failed to start: cannot use tls\.cert \(.+\) with tls\.key \(.+\): .*key values mismatch/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(other, { recursive: true, force: true });
    }
  });
});
