import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { postJson, startInProcess } from '../helpers/herald.js';

/** The operator API of outbound webhooks: every bad input gets a clear code and changes nothing. */

async function call(method: string, url: string, body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as any) : undefined };
}

describe('outbound webhooks API: bad input', () => {
  test('refuses invalid endpoint definitions with a registry code', async (t) => {
    const h = await startInProcess({ outbound: { allowPrivateTargets: true } });
    t.after(() => h.close());
    const ok = { url: 'https://example.com/hook', channels: ['a'] };
    const cases: [unknown, string][] = [
      [{ ...ok, url: 'not a url' }, 'URL_INVALID'],
      [{ ...ok, url: '/relative/path' }, 'URL_INVALID'],
      [{ ...ok, url: 'ftp://example.com/' }, 'URL_INVALID'],
      [{ ...ok, url: 'file:///etc/passwd' }, 'URL_INVALID'],
      [{ ...ok, url: 'javascript:alert(1)' }, 'URL_INVALID'],
      [{ ...ok, url: 'gopher://127.0.0.1:6379/_FLUSHALL' }, 'URL_INVALID'],
      [{ ...ok, url: 'https://user:pass@example.com/' }, 'URL_INVALID'],
      [{ ...ok, url: 'https://example.com/' + 'a'.repeat(3000) }, 'URL_INVALID'],
      [{ ...ok, url: 42 }, 'URL_INVALID'],
      [{ channels: ['a'] }, 'URL_INVALID'],
      [{ url: ok.url }, 'CHANNEL_INVALID'],
      [{ ...ok, channels: [] }, 'CHANNEL_INVALID'],
      [{ ...ok, channels: ['a..b'] }, 'CHANNEL_INVALID'],
      [{ ...ok, channels: 'a' }, 'CHANNEL_INVALID'],
      [{ ...ok, types: ['ok', 'bad\r\nX-Injected: 1'] }, 'TYPE_INVALID'],
      [{ ...ok, headers: { 'x-token': 'a\r\nX-Injected: 1' } }, 'BODY_INVALID'],
      [{ ...ok, headers: { 'bad header': 'v' } }, 'BODY_INVALID'],
      [{ ...ok, headers: { 'webhook-signature': 'v1,forged' } }, 'BODY_INVALID'],
      [{ ...ok, headers: { host: 'internal' } }, 'BODY_INVALID'],
      [{ ...ok, ordering: 'random' }, 'BODY_INVALID'],
      [{ ...ok, maxConcurrency: 0 }, 'BODY_INVALID'],
      [{ ...ok, maxConcurrency: 1.5 }, 'BODY_INVALID'],
      [{ ...ok, secret: 'whsec_mine' }, 'BODY_INVALID'],
      [[ok], 'BODY_INVALID'],
      ['{"url":', 'JSON_INVALID'],
    ];
    for (const [body, code] of cases) {
      const r = await postJson(`${h.url}/v1/endpoints`, body);
      assert.equal(r.json?.error?.code, code, `${JSON.stringify(body).slice(0, 80)} -> ${r.text}`);
      assert.equal(r.status, 400);
    }
    const list = await call('GET', `${h.url}/v1/endpoints`);
    assert.deepEqual(list.json.endpoints, [], 'nothing was stored');
  });

  test('refuses a header value an HTTP request cannot carry (RFC 9110 §5.5), on create and on update', async (t) => {
    const h = await startInProcess({ outbound: { allowPrivateTargets: true } });
    t.after(() => h.close());
    const ok = { url: 'https://example.com/hook', channels: ['a'] };
    for (const value of ['Bearer tök€n', 'Ā', 'x\u2028y', 'key 🔑', 'a\u0000b', 'a\rb', 'a\u007fb']) {
      const r = await postJson(`${h.url}/v1/endpoints`, { ...ok, headers: { 'x-api-key': value } });
      assert.equal(r.status, 400, JSON.stringify(value));
      assert.equal(r.json.error.code, 'BODY_INVALID');
      assert.match(r.json.error.message, /x-api-key: the value holds U\+[0-9A-F]{4}/);
    }
    assert.deepEqual((await call('GET', `${h.url}/v1/endpoints`)).json.endpoints, [], 'nothing was stored');
    // Tab, visible ASCII and Latin-1 (obs-text) are field content: accepted.
    const made = await postJson(`${h.url}/v1/endpoints`, { ...ok, headers: { 'x-api-key': 'Bearer\tcafé ~!' } });
    assert.equal(made.status, 201, made.text);
    const patched = await call('PATCH', `${h.url}/v1/endpoints/${made.json.id}`, { headers: { 'x-api-key': 'naïve ✓' } });
    assert.equal(patched.status, 400);
    assert.equal(patched.json.error.code, 'BODY_INVALID');
  });

  test('unknown ids are 404 with their own codes', async (t) => {
    const h = await startInProcess();
    t.after(() => h.close());
    for (const [method, path, body] of [
      ['GET', '/v1/endpoints/ep_nope'],
      ['PATCH', '/v1/endpoints/ep_nope', { enabled: false }],
      ['DELETE', '/v1/endpoints/ep_nope'],
      ['POST', '/v1/endpoints/ep_nope/rotate-secret', {}],
      ['GET', '/v1/endpoints/ep_nope/deliveries'],
      ['POST', '/v1/endpoints/ep_nope/replay', { after: '0' }],
    ] as [string, string, unknown?][]) {
      const r = await call(method, h.url + path, body);
      assert.equal(r.status, 404, `${method} ${path}`);
      assert.equal(r.json.error.code, 'ENDPOINT_NOT_FOUND', `${method} ${path}`);
    }
    for (const id of ['dlv_999999', 'garbage', '1', 'dlv_-1']) {
      const get = await call('GET', `${h.url}/v1/deliveries/${id}`);
      assert.equal(get.json.error.code, 'DELIVERY_NOT_FOUND', id);
      const retry = await call('POST', `${h.url}/v1/deliveries/${id}/retry`, {});
      assert.equal(retry.json.error.code, 'DELIVERY_NOT_FOUND', id);
    }
  });

  test('lists, patches and deletes; secrets are shown only when made', async (t) => {
    const h = await startInProcess();
    t.after(() => h.close());
    const made = await postJson(`${h.url}/v1/endpoints`, {
      url: 'https://example.com/hook',
      channels: ['orders.>'],
      headers: { Authorization: 'Bearer abc' },
      description: 'billing',
    });
    assert.equal(made.status, 201);
    const id = made.json.id as string;
    assert.match(id, /^ep_[0-9a-f]{20}$/);
    const one = await call('GET', `${h.url}/v1/endpoints/${id}`);
    assert.equal(one.json.secret, undefined);
    assert.deepEqual(one.json.headers, { authorization: '[set]' }, 'header values are never shown back');
    assert.equal(one.json.ordering, 'parallel');
    const bad = await call('PATCH', `${h.url}/v1/endpoints/${id}`, { enabled: 'no' });
    assert.equal(bad.json.error.code, 'BODY_INVALID');
    const patched = await call('PATCH', `${h.url}/v1/endpoints/${id}`, { enabled: false, channels: ['x'] });
    assert.deepEqual([patched.json.enabled, patched.json.disabledReason, patched.json.channels], [false, 'operator', ['x']]);
    const replay = await postJson(`${h.url}/v1/endpoints/${id}/replay`, { after: 'yesterday' });
    assert.equal(replay.json.error.code, 'POSITION_INVALID');
    const noAfter = await postJson(`${h.url}/v1/endpoints/${id}/replay`, {});
    assert.equal(noAfter.json.error.code, 'BODY_INVALID');
    const badList = await call('GET', `${h.url}/v1/endpoints/${id}/deliveries?limit=0`);
    assert.equal(badList.json.error.code, 'LIMIT_INVALID');
    const badStatus = await call('GET', `${h.url}/v1/endpoints/${id}/deliveries?status=lost`);
    assert.equal(badStatus.status, 400);
    assert.equal((await call('DELETE', `${h.url}/v1/endpoints/${id}`)).status, 204);
    assert.equal((await call('GET', `${h.url}/v1/endpoints/${id}`)).status, 404);
  });

  test('the operator API answers loopback clients only when no auth is configured', async (t) => {
    const h = await startInProcess();
    t.after(() => h.close());
    for (const [method, url] of [
      ['GET', '/v1/endpoints'],
      ['POST', '/v1/endpoints'],
      ['GET', '/v1/deliveries/dlv_1'],
    ] as const) {
      const res = await h.herald.app.inject({ method, url, remoteAddress: '203.0.113.7', payload: '{}', headers: { 'content-type': 'application/json' } });
      assert.equal(res.statusCode, 403, `${method} ${url}`);
      assert.equal(res.json().error.code, 'LOOPBACK_ONLY');
    }
  });
});
