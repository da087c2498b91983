import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';

/** A raw SSE stream: everything the server sent, as text. */
function rawStream(url: string, channel: string): { text: () => string; socket: Socket } {
  const u = new URL(url);
  let text = '';
  const socket = connect({ host: u.hostname, port: Number(u.port) }, () =>
    socket.write(`GET /v1/stream?channel=${channel} HTTP/1.1\r\nHost: ${u.host}\r\nAccept: text/event-stream\r\n\r\n`),
  );
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (text += d));
  return { text: () => text, socket };
}

describe('SSE heartbeats and what an open stream keeps', () => {
  let h: Awaited<ReturnType<typeof startInProcess>>;
  before(async () => {
    h = await startInProcess({ sse: { heartbeatSeconds: 0.3 } });
  });
  after(() => h.close());

  test('an open stream has let go of its request headers and of fastify\'s response listener', async () => {
    let opened: { req: IncomingMessage; res: ServerResponse } | undefined;
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      if (req.url?.startsWith('/v1/stream?channel=kept')) opened = { req, res };
    };
    h.herald.app.server.on('request', onRequest);
    const s = rawStream(h.url, 'kept');
    try {
      await waitFor(() => s.text().includes('retry:'));
      const { req, res } = opened!;
      assert.deepEqual(req.rawHeaders, []);
      assert.deepEqual(req.headers, {});
      // fastify's listener runs onResponse hooks and request logs, neither of which Herald has.
      // If this fails after a fastify upgrade, the listener was renamed: update
      // FASTIFY_RESPONSE_LISTENER in src/transports/sse/sse-internals.ts.
      const names = [...res.listeners('finish'), ...res.listeners('error')].map((l) => l.name);
      assert.ok(names.length > 0, 'node keeps its own finish listener');
      assert.ok(!names.includes('onResFinished'), names.join(', '));
      // The stream still works.
      await postJson(`${h.url}/v1/publish`, { channel: 'kept', data: 'still here' });
      await waitFor(() => s.text().includes('data: still here'));
    } finally {
      h.herald.app.server.off('request', onRequest);
      s.socket.destroy();
    }
  });

  test('an idle stream gets heartbeat comments; a stream with events in every period gets none', async () => {
    const idle = rawStream(h.url, 'quiet');
    const busy = rawStream(h.url, 'busy');
    try {
      await waitFor(() => idle.text().includes('retry:') && busy.text().includes('retry:'));
      // Events every 50 ms for 1.5 s: five heartbeat periods.
      for (let i = 0; i < 30; i++) {
        const r = await postJson(`${h.url}/v1/publish`, { channel: 'busy', data: i });
        assert.equal(r.status, 201);
        await new Promise((res) => setTimeout(res, 50));
      }
      assert.ok((idle.text().match(/: heartbeat\n\n/g) ?? []).length >= 3, idle.text());
      assert.ok(busy.text().includes('data: 29'), 'the busy stream got its events');
      // (Its first visit may have come before the first event: counted from that event on.)
      assert.doesNotMatch(busy.text().slice(busy.text().indexOf('data: 0')), /: heartbeat/);
      // Once events stop, the busy stream is idle too and gets heartbeats again.
      await waitFor(() => busy.text().includes(': heartbeat'), 3_000, 'a heartbeat after the events stop');
    } finally {
      idle.socket.destroy();
      busy.socket.destroy();
    }
  });
});
