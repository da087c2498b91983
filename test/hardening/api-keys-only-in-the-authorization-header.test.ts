import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connectWs, WsClient, type Refusal } from '../helpers/auth-clients.js';
import { startInProcess } from '../helpers/herald.js';
import { TEST_SECRET, userToken } from '../helpers/tokens.js';

/**
 * A URL is written to proxy logs, browser history and Referer headers (RFC 6750 5.3); an API key
 * does not expire. `?token=` (for EventSource, which cannot set headers) and the cookie take JWTs
 * only; a key there is refused, and never looked up.
 */
const ADMIN_KEY = 'admin-key-0123456789abcdefghij';
const READER_KEY = 'reader-key-0123456789abcdefghij';

async function stream(url: string, headers: Record<string, string> = {}) {
  const ac = new AbortController();
  const res = await fetch(url, { headers, signal: ac.signal });
  const body = res.status === 200 ? undefined : ((await res.json()) as { error: { code: string; message: string } });
  ac.abort();
  return { status: res.status, error: body?.error };
}

describe('API keys and JWTs configured', () => {
  let h: Awaited<ReturnType<typeof startInProcess>>;
  before(async () => {
    h = await startInProcess({
      store: { type: 'memory' },
      auth: {
        apiKeys: [
          { key: ADMIN_KEY, name: 'admin', scopes: ['admin'] },
          { key: READER_KEY, name: 'reader', scopes: ['subscribe:>'] },
        ],
        jwt: { secret: TEST_SECRET },
      },
    });
  });
  after(() => h.close());

  test('an API key in ?token= or the cookie is refused on SSE with 401 API_KEY_NOT_IN_HEADER', async () => {
    for (const key of [ADMIN_KEY, READER_KEY, 'not-a-key-at-all-0123456789']) {
      const q = await stream(`${h.url}/v1/stream?channel=private.a&token=${key}`);
      assert.equal(q.status, 401, key);
      assert.equal(q.error!.code, 'API_KEY_NOT_IN_HEADER');
      assert.match(q.error!.message, /Authorization: Bearer/);
      const c = await stream(`${h.url}/v1/stream?channel=private.a`, { cookie: `herald_token=${key}` });
      assert.equal(c.error?.code, 'API_KEY_NOT_IN_HEADER', `cookie ${key}`);
      const seed = await stream(`${h.url}/sse?token=${key}`);
      assert.equal(seed.error?.code, 'API_KEY_NOT_IN_HEADER', `/sse ${key}`);
    }
  });

  test('the same key in the Authorization header opens the stream, and a JWT in ?token= still does', async () => {
    assert.equal((await stream(`${h.url}/v1/stream?channel=private.a`, { authorization: `Bearer ${READER_KEY}` })).status, 200);
    const jwt = await userToken('u1', ['private.>']);
    assert.equal((await stream(`${h.url}/v1/stream?channel=private.a&token=${jwt}`)).status, 200);
  });

  test('a WebSocket with an API key in ?token= is refused before the handshake', async () => {
    const ws = h.url.replace('http', 'ws');
    const refused = (await connectWs(`${ws}/v1/ws?token=${ADMIN_KEY}`)) as Refusal;
    assert.equal(refused.status, 401);
    assert.equal(refused.code, 'API_KEY_NOT_IN_HEADER');
    const ok = await connectWs(`${ws}/v1/ws`, { authorization: `Bearer ${ADMIN_KEY}` });
    assert.ok(ok instanceof WsClient);
    ok.close();
  });

  test('the 401 of GET /v1/events names only what it reads: the Authorization header', async () => {
    const jwt = await userToken('u1', ['private.>']);
    const res = await fetch(`${h.url}/v1/events?channel=private.a&token=${jwt}`);
    assert.equal(res.status, 401);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(error.code, 'UNAUTHORIZED');
    assert.doesNotMatch(error.message, /token=|cookie/);
    assert.match(error.message, /Authorization: Bearer/);
    const ok = await fetch(`${h.url}/v1/events?channel=private.a`, { headers: { authorization: `Bearer ${jwt}` } });
    assert.equal(ok.status, 200);
  });
});
