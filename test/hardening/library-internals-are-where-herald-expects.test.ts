import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Socket } from 'node:net';
import { test } from 'node:test';
import Fastify from 'fastify';
import { WebSocket, WebSocketServer } from 'ws';
import { FASTIFY_RESPONSE_LISTENER, HEAD_SENT, releaseOpeningState } from '../../src/transports/sse/sse-internals.js';
import { rawSocket } from '../../src/transports/ws/ws-internals.js';

/*
 * Herald reaches into three library privates, each fenced in one file per transport
 * (src/transports/sse/sse-internals.ts, src/transports/ws/ws-internals.ts). These tests look for
 * each private on a real instance of the library as installed, so an upgrade that renames or
 * retypes one fails here, by name, rather than quietly costing memory per stream or throwing on
 * every WebSocket write.
 */

const namedListeners = (res: ServerResponse, ev: 'finish' | 'error') =>
  res.listeners(ev).filter((l) => (l as { name?: string }).name === FASTIFY_RESPONSE_LISTENER).length;

test("node:http keeps the response head in `_header`, flags it in `_headerSent`, and fastify's response listener has the expected name", async (t) => {
  // With a logger (Herald always has one) fastify puts its response listener on every reply.
  const app = Fastify({ logger: { level: 'silent' } });
  const ac = new AbortController();
  t.after(async () => {
    ac.abort();
    await app.close();
  });
  let opened!: (v: { req: IncomingMessage; res: ServerResponse }) => void;
  const stream = new Promise<{ req: IncomingMessage; res: ServerResponse }>((r) => (opened = r));
  app.get('/stream', (req, reply) => {
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
    reply.raw.write(': open\n\n');
    opened({ req: req.raw, res: reply.raw });
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  const client = await fetch(`http://127.0.0.1:${port}/stream`, { signal: ac.signal });
  assert.equal(client.status, 200);
  const { req, res } = await stream;
  // The first write has carried the head out: the state releaseOpeningState relies on.
  const r = res as unknown as { _header?: unknown; _headerSent?: unknown };
  assert.equal(typeof r._header, 'string', 'node:http no longer keeps the response head as a string in `_header`');
  assert.match(r._header as string, /^HTTP\/1\.1 200 /, '`_header` is not the response head');
  assert.equal(r._headerSent, true, 'node:http no longer sets `_headerSent` once the head is written');
  assert.equal(namedListeners(res, 'finish'), 1, `fastify no longer puts a '${FASTIFY_RESPONSE_LISTENER}' listener on 'finish'`);
  assert.equal(namedListeners(res, 'error'), 1, `fastify no longer puts a '${FASTIFY_RESPONSE_LISTENER}' listener on 'error'`);

  releaseOpeningState(req, res);
  assert.equal(r._header, HEAD_SENT);
  assert.equal(namedListeners(res, 'finish') + namedListeners(res, 'error'), 0);
  // node reads `_header` only as "headers sent" from here: both public views agree.
  assert.equal(res.headersSent, true, 'node:http no longer derives headersSent from `_header`');
  assert.throws(() => res.writeHead(500), { code: 'ERR_HTTP_HEADERS_SENT' });
  // ... and the stream still works after the swap.
  const reader = client.body!.getReader();
  res.write(': still open\n\n');
  let text = '';
  while (!text.includes('still open')) {
    const { value, done } = await reader.read();
    assert.equal(done, false, 'the stream ended after its opening state was released');
    text += Buffer.from(value!).toString();
  }
  res.end();
});

test('ws keeps the TCP socket of a connection in `_socket`', async (t) => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  t.after(() => new Promise<void>((r) => wss.close(() => r())));
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const accepted = new Promise<{ ws: WebSocket; req: IncomingMessage }>((r) => wss.once('connection', (ws, req) => r({ ws, req })));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  t.after(() => client.terminate());
  const { ws, req } = await accepted;
  const socket = rawSocket(ws);
  assert.ok(socket instanceof Socket, 'ws no longer keeps a net.Socket in `_socket`');
  assert.equal(socket, req.socket, '`_socket` is not the socket the upgrade came in on');
  // What Herald does with it: cork a tick's frames into one write, then wait for 'drain'.
  const got = new Promise<string>((r) => client.once('message', (m) => r(m.toString())));
  socket.cork();
  ws.send('one write');
  socket.uncork();
  assert.equal(await got, 'one write');
  ws.close();
});
