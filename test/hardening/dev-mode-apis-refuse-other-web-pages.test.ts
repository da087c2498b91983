import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { isLoopbackHost } from '../../src/http/local-api.js';
import { startInProcess } from '../helpers/herald.js';

/**
 * With no auth configured the publish and operator APIs answer this machine only, and every web
 * page open on this machine is on it. These tests send what a browser sends for a foreign page:
 * CORS-simple bodies (no preflight), a foreign Origin, a preflight, a rebound Host name.
 */
interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: any;
}

function send(url: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = text;
        }
        resolve({ status: res.statusCode!, headers: res.headers, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const EVENT = JSON.stringify({ channel: 'dev.x', data: 1 });
const ENDPOINT = JSON.stringify({ url: 'https://example.com/hook' });
const DEV_TOKEN = JSON.stringify({ sub: 'ann' });
const EVIL = 'http://evil.example';

describe('dev mode, cors.origins at its default ("*")', () => {
  let h: Awaited<ReturnType<typeof startInProcess>>;
  let port: string;
  before(async () => {
    h = await startInProcess({ store: { type: 'memory' } });
    port = new URL(h.url).port;
  });
  after(() => h.close());

  test('CORS-simple bodies (text/plain, form, multipart) are refused with 415 before anything happens', async () => {
    for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      for (const [path, body] of [['/v1/publish', EVENT], ['/v1/endpoints', ENDPOINT], ['/v1/dev/token', DEV_TOKEN]] as const) {
        const r = await send(h.url, 'POST', path, { 'content-type': type, origin: EVIL }, body);
        assert.equal(r.status, 415, `${path} as ${type}`);
        assert.equal(r.json.error.code, 'UNSUPPORTED_MEDIA_TYPE');
        assert.equal(r.headers['access-control-allow-origin'], undefined, `${path} as ${type}: no cross-origin read`);
      }
    }
    const events = await send(h.url, 'GET', '/v1/events?channel=dev.x', {});
    assert.deepEqual(events.json.events, []);
    const endpoints = await send(h.url, 'GET', '/v1/endpoints', {});
    assert.deepEqual(endpoints.json.endpoints, []);
  });

  test('a page of another origin may neither call nor read them, even with JSON', async () => {
    const json = { 'content-type': 'application/json', origin: EVIL };
    for (const [path, body] of [['/v1/publish', EVENT], ['/v1/endpoints', ENDPOINT], ['/v1/dev/token', DEV_TOKEN]] as const) {
      const r = await send(h.url, 'POST', path, json, body);
      assert.equal(r.status, 403, path);
      assert.equal(r.json.error.code, 'ORIGIN_FORBIDDEN');
      assert.equal(r.headers['access-control-allow-origin'], undefined, `${path}: no cross-origin read`);
      const preflight = await send(h.url, 'OPTIONS', path, {
        origin: EVIL,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      });
      assert.ok(preflight.status >= 400, `${path}: preflight answered ${preflight.status}`);
      assert.equal(preflight.headers['access-control-allow-origin'], undefined, `${path}: preflight allows no origin`);
    }
    // a body-less POST or a GET needs no preflight either: refused by its Origin
    const rotate = await send(h.url, 'POST', '/v1/endpoints/ep_x/rotate-secret', { origin: EVIL });
    assert.equal(rotate.json.error.code, 'ORIGIN_FORBIDDEN');
    const list = await send(h.url, 'GET', '/v1/endpoints', { origin: EVIL });
    assert.equal(list.json.error.code, 'ORIGIN_FORBIDDEN');
    assert.equal(list.headers['access-control-allow-origin'], undefined);
  });

  test('Herald\'s own pages (same origin) and tools without an Origin still publish', async () => {
    const own = await send(h.url, 'POST', '/v1/publish', { 'content-type': 'application/json', origin: `http://127.0.0.1:${port}` }, EVENT);
    assert.equal(own.status, 201);
    const curl = await send(h.url, 'POST', '/v1/publish', { 'content-type': 'application/json; charset=utf-8' }, EVENT);
    assert.equal(curl.status, 201);
  });

  test('a Host that is not a loopback name is refused (DNS rebinding): 403 HOST_FORBIDDEN', async () => {
    for (const host of ['evil.example', `evil.example:${port}`, '127.0.0.1.nip.io', `localhost.evil.example:${port}`, '[::2]', '10.0.0.1', 'localhost:x']) {
      for (const [path, body] of [['/v1/publish', EVENT], ['/v1/endpoints', ENDPOINT], ['/v1/dev/token', DEV_TOKEN]] as const) {
        const r = await send(h.url, 'POST', path, { 'content-type': 'application/json', host }, body);
        assert.equal(r.status, 403, `${path} with Host ${host}`);
        assert.equal(r.json.error.code, 'HOST_FORBIDDEN');
      }
    }
    for (const host of ['localhost', `localhost:${port}`, `app.localhost:${port}`, `127.0.0.1:${port}`, '127.9.8.7', `[::1]:${port}`, 'LOCALHOST']) {
      const r = await send(h.url, 'POST', '/v1/publish', { 'content-type': 'application/json', host }, EVENT);
      assert.equal(r.status, 201, `Host ${host}`);
    }
  });

  test('streams, history, the seed routes and inbound webhooks keep answering as before', async () => {
    const history = await send(h.url, 'GET', '/v1/events?channel=dev.x', { origin: EVIL, host: 'evil.example' });
    assert.equal(history.status, 200);
    assert.equal(history.headers['access-control-allow-origin'], '*');
    const seed = await send(h.url, 'POST', '/webhook', { 'content-type': 'text/plain', origin: EVIL }, '{"event":"e","data":1}');
    assert.equal(seed.status, 200);
    assert.equal(seed.json, 'Webhook received');
    const send1 = await send(h.url, 'GET', '/sse/send', { host: 'evil.example' });
    assert.equal(send1.status, 200);
    // provider webhooks are not held to JSON: an unknown source is a 404, never a 415
    const inbound = await send(h.url, 'POST', '/v1/webhooks/nosuch', { 'content-type': 'application/x-www-form-urlencoded' }, 'a=1');
    assert.equal(inbound.json.error.code, 'SOURCE_UNKNOWN');
  });
});

test('dev mode: an origin named in cors.origins may publish and read the answer', async () => {
  const app = 'http://app.localhost:5173';
  const h = await startInProcess({ store: { type: 'memory' }, cors: { origins: [app] } });
  try {
    const preflight = await send(h.url, 'OPTIONS', '/v1/publish', { origin: app, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers['access-control-allow-origin'], app);
    const r = await send(h.url, 'POST', '/v1/publish', { 'content-type': 'application/json', origin: app }, EVENT);
    assert.equal(r.status, 201);
    assert.equal(r.headers['access-control-allow-origin'], app);
    const other = await send(h.url, 'POST', '/v1/publish', { 'content-type': 'application/json', origin: EVIL }, EVENT);
    assert.equal(other.json.error.code, 'ORIGIN_FORBIDDEN');
  } finally {
    await h.close();
  }
});

test('with credentials configured the publish API also takes JSON only', async () => {
  const key = 'publisher-key-0123456789abcdef';
  const h = await startInProcess({ store: { type: 'memory' }, auth: { apiKeys: [{ key, scopes: ['publish:>'] }] } });
  try {
    const r = await send(h.url, 'POST', '/v1/publish', { 'content-type': 'text/plain', authorization: `Bearer ${key}` }, EVENT);
    assert.equal(r.status, 415);
    const ok = await send(h.url, 'POST', '/v1/publish', { 'content-type': 'application/json', authorization: `Bearer ${key}` }, EVENT);
    assert.equal(ok.status, 201);
  } finally {
    await h.close();
  }
});

test('loopback Host names: localhost, *.localhost, 127.0.0.0/8 and [::1], with or without a port', () => {
  for (const h of ['localhost', 'localhost:8080', 'a.b.localhost:1', '127.0.0.1', '127.255.0.1:80', '[::1]', '[::1]:8080', '[::ffff:127.0.0.1]:1']) {
    assert.ok(isLoopbackHost(h), h);
  }
  for (const h of [undefined, '', 'localhost.', 'evil.example', 'localhost.evil.example', '128.0.0.1', '[::2]', '::1', '[::1', '0.0.0.0', 'xlocalhost', 'localhost:port']) {
    assert.ok(!isLoopbackHost(h), String(h));
  }
});
