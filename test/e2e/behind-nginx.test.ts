import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import { Agent, fetch as undiciFetch } from 'undici';
import WebSocket from 'ws';
import { spawnHerald, waitFor, type SpawnedHerald } from '../helpers/herald.js';
import { findNginx, hasOpenssl, NGINX_HOW, startNginx, type RunningNginx } from '../helpers/nginx.js';
import { needService } from '../helpers/service.js';

/**
 * deploy/nginx/herald.conf, run by Debian's nginx with TLS in front of a spawned Herald, the
 * way docs/deploy.md sets it up. Each client comes from its own loopback address (127.0.0.x),
 * so that with `connectionsPerIp: 1` a second connection is refused only when Herald sees the
 * client's address (X-Forwarded-For with trustProxy) rather than nginx's.
 */
const API_KEY = 'behind-nginx-test-key-0123456789abcdef';
const nginxBin = findNginx();
const available = nginxBin !== undefined && hasOpenssl();

describe('behind nginx (deploy/nginx/herald.conf)', () => {
  let herald: SpawnedHerald;
  let nginx: RunningNginx;
  const agents: Agent[] = [];
  /** An undici fetch whose connections leave from `localAddress` and trust nginx's certificate. */
  const fetchFrom = (localAddress: string) => {
    const dispatcher = new Agent({ localAddress, connect: { ca: nginx.ca } });
    agents.push(dispatcher);
    return (input: string | URL, init: Parameters<typeof undiciFetch>[1] = {}) => undiciFetch(input, { ...init, dispatcher });
  };
  const publish = async (data: unknown): Promise<string> => {
    const res = await fetchFrom('127.0.0.1')(`${nginx.url}/v1/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 'orders', type: 'order.paid', data }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    return ((await res.json()) as { id: string }).id;
  };

  before(async () => {
    if (!available) return; // each test says so (skip, or fail in CI)
    herald = await spawnHerald({
      trustProxy: true,
      auth: { apiKeys: [{ key: API_KEY, scopes: ['publish:orders'] }], publicChannels: ['orders'] },
      limits: { applyToLoopback: true, connectionsPerIp: 1 },
    });
    nginx = await startNginx(nginxBin!, new URL(herald.url).host);
  });
  after(async () => {
    await nginx?.stop();
    await herald?.stop();
    await Promise.all(agents.map((a) => a.close()));
  });

  test('SSE events arrive one by one, each before the next is published; Last-Event-ID resumes through it', async (t) => {
    if (!needService(t, available, 'nginx and openssl', NGINX_HOW)) return;
    const ids: string[] = [];
    const received: { id: string; data: string }[] = [];
    const source = new EventSource(`${nginx.url}/v1/stream?channel=orders`, {
      fetch: fetchFrom('127.0.0.1') as unknown as typeof fetch,
    });
    source.addEventListener('order.paid', (e) => received.push({ id: e.lastEventId, data: e.data }));
    let opened = false;
    source.addEventListener('open', () => (opened = true));
    try {
      await waitFor(() => opened, 10_000, 'the stream to open through nginx');
      // A buffering proxy (proxy_buffering on, or gzip on text/event-stream) holds these back
      // until kilobytes pile up: the first would never arrive before the second is published.
      for (let i = 1; i <= 3; i++) {
        ids.push(await publish({ n: i }));
        await waitFor(() => received.length === i, 10_000, `event ${i} to arrive before event ${i + 1} is published`);
      }
      assert.deepEqual(received, ids.map((id, i) => ({ id, data: JSON.stringify({ n: i + 1 }) })));
    } finally {
      source.close();
    }

    // Missed while away: resuming with the last id gets exactly these, in order.
    const missed = [await publish({ n: 4 }), await publish({ n: 5 })];
    const controller = new AbortController();
    const res = await fetchFrom('127.0.0.4')(`${nginx.url}/v1/stream?channel=orders`, {
      headers: { 'last-event-id': ids[2]! },
      signal: controller.signal,
    });
    assert.equal(res.status, 200);
    let text = '';
    const decoder = new TextDecoder();
    const reader = res.body!.getReader();
    const resumed = () => [...text.matchAll(/^id: ?(.+)$/gm)].map((m) => m[1]);
    while (resumed().length < missed.length) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    controller.abort();
    assert.deepEqual(resumed(), missed);
    assert.doesNotMatch(text, /herald\.reset/);
  });

  test('a WebSocket upgrades through it and receives events', async (t) => {
    if (!needService(t, available, 'nginx and openssl', NGINX_HOW)) return;
    const ws = new WebSocket(`${nginx.url.replace('https', 'wss')}/v1/ws`, { ca: nginx.ca, localAddress: '127.0.0.5' });
    const frames: Record<string, any>[] = [];
    ws.on('message', (data) => frames.push(JSON.parse(data.toString()) as Record<string, any>));
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      ws.send(JSON.stringify({ op: 'subscribe', channel: 'orders', ref: 1 }));
      await waitFor(() => frames.find((f) => f.op === 'ack' && f.ref === 1), 10_000, 'the subscribe ack');
      const id = await publish({ over: 'websocket' });
      const event = await waitFor(() => frames.find((f) => f.op === 'event' && f.id === id), 10_000, 'the event over WebSocket');
      assert.deepEqual(event!.data, { over: 'websocket' });
    } finally {
      ws.close();
    }
  });

  test('limits count the client address that nginx forwards, not nginx’s own', async (t) => {
    if (!needService(t, available, 'nginx and openssl', NGINX_HOW)) return;
    const open = async (from: string) => {
      const controller = new AbortController();
      const res = await fetchFrom(from)(`${nginx.url}/v1/stream?channel=orders`, { signal: controller.signal });
      return { status: res.status, body: res.status === 200 ? undefined : await res.json(), close: () => controller.abort() };
    };
    const first = await open('127.0.0.2');
    const second = await open('127.0.0.2'); // the same client again: over connectionsPerIp (1)
    const other = await open('127.0.0.3'); // another client: counted on its own
    try {
      assert.equal(first.status, 200);
      assert.equal(second.status, 429);
      assert.equal((second.body as { error: { code: string } }).error.code, 'TOO_MANY_CONNECTIONS');
      assert.equal(other.status, 200, `a second client behind the same proxy is not refused: ${JSON.stringify(other.body)}`);
    } finally {
      for (const c of [first, second, other]) c.close();
    }
  });
});
