import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import Fastify from 'fastify';
import { Security } from '../../src/auth/security.js';
import { buildConfig } from '../../src/config/load.js';
import { errorHandler } from '../../src/http/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { postJson, spawnHerald, startInProcess, waitFor } from '../helpers/herald.js';
import { TEST_SECRET, userToken } from '../helpers/tokens.js';

const ORDERS_KEY = 'orders-publisher-key-0123456789';
const ADMIN_KEY = 'admin-operator-key-0123456789abc';
const HASHED_KEY = 'hashed-key-never-in-the-config-file';

const config = {
  store: { type: 'memory' },
  auth: {
    apiKeys: [
      { key: ORDERS_KEY, name: 'orders', scopes: ['publish:orders.>', 'subscribe:orders.>'] },
      { key: ADMIN_KEY, name: 'ops', scopes: ['admin'] },
      { keySha256: createHash('sha256').update(HASHED_KEY).digest('hex'), scopes: ['publish:chat.*'] },
    ],
    jwt: { secret: TEST_SECRET },
    publicChannels: ['news'],
  },
};

describe('publishing needs credentials whose scope covers the channel', () => {
  let h: Awaited<ReturnType<typeof startInProcess>>;
  const publish = (body: unknown, key?: string) =>
    postJson(`${h.url}/v1/publish`, body, key === undefined ? {} : { authorization: `Bearer ${key}` });
  before(async () => {
    h = await startInProcess(config);
  });
  after(() => h.close());

  test('a key with publish:orders.> publishes to orders.eu; its SHA-256 form works the same', async () => {
    const r = await publish({ channel: 'orders.eu', data: { n: 1 } }, ORDERS_KEY);
    assert.equal(r.status, 201);
    assert.ok(r.json.id);
    assert.equal((await publish({ channel: 'chat.room-1', data: 'hi' }, HASHED_KEY)).status, 201);
  });

  test('no credentials: 401 UNAUTHORIZED, even from loopback (no dev mode once auth is configured)', async () => {
    const r = await publish({ channel: 'orders.eu', data: 1 });
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 'UNAUTHORIZED');
  });

  test('an unknown key: 401 API_KEY_INVALID; a valid key outside its scope: 403 PUBLISH_FORBIDDEN', async () => {
    const bad = await publish({ channel: 'orders.eu', data: 1 }, 'not-a-key-at-all-0123456789');
    assert.deepEqual([bad.status, bad.json.error.code], [401, 'API_KEY_INVALID']);
    const outside = await publish({ channel: 'billing', data: 1 }, ORDERS_KEY);
    assert.deepEqual([outside.status, outside.json.error.code], [403, 'PUBLISH_FORBIDDEN']);
    // one forbidden event refuses the whole batch, and nothing is stored
    const batch = await publish([{ channel: 'orders.eu', data: 1 }, { channel: 'billing', data: 2 }], ORDERS_KEY);
    assert.equal(batch.status, 403);
    const history = await fetch(`${h.url}/v1/events?channel=billing`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.deepEqual(((await history.json()) as { events: unknown[] }).events, []);
  });

  test('a JWT publishes where its herald.publish claim allows', async () => {
    const t = await userToken('u1', [], ['chat.room-1']);
    assert.equal((await publish({ channel: 'chat.room-1', data: 'hi' }, t)).status, 201);
    const no = await publish({ channel: 'chat.room-2', data: 'hi' }, t);
    assert.deepEqual([no.status, no.json.error.code], [403, 'PUBLISH_FORBIDDEN']);
  });

  test('history needs subscribe permission; public channels are open', async () => {
    const anon = await fetch(`${h.url}/v1/events?channel=orders.eu`);
    assert.equal(anon.status, 401);
    const scoped = await fetch(`${h.url}/v1/events?channel=orders.eu`, { headers: { authorization: `Bearer ${ORDERS_KEY}` } });
    assert.equal(scoped.status, 200);
    assert.equal((await fetch(`${h.url}/v1/events?channel=news`)).status, 200);
  });

  test('the seed publish routes need publish permission once auth is configured', async () => {
    assert.equal((await fetch(`${h.url}/sse/send`)).status, 401);
    assert.equal((await fetch(`${h.url}/sse/send`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).status, 200);
  });
});

test('operator APIs need a key with the admin scope: 401 without, 403 with a publish-only key', async () => {
  const security = new Security(buildConfig(config), createLogger('silent'));
  const app = Fastify();
  app.setErrorHandler(errorHandler(createLogger('silent')));
  app.addHook('onRequest', security.onRequest);
  app.get('/operator', async (req) => {
    security.guard.operator(req);
    return { ok: true };
  });
  const call = async (key?: string) => {
    const r = await app.inject({ method: 'GET', url: '/operator', headers: key ? { authorization: `Bearer ${key}` } : {} });
    return [r.statusCode, r.json().error?.code ?? 'ok'];
  };
  assert.deepEqual(await call(), [401, 'UNAUTHORIZED']);
  assert.deepEqual(await call(ORDERS_KEY), [403, 'FORBIDDEN']);
  assert.deepEqual(await call(await userToken('u1', ['>'], ['>'])), [403, 'FORBIDDEN']);
  assert.deepEqual(await call(ADMIN_KEY), [200, 'ok']);
  await app.close();
});

test('keys and tokens never reach the logs, even when refused', async () => {
  const h = await spawnHerald({ ...config, log: { level: 'debug' } });
  try {
    const token = await userToken('u1', ['orders.>']);
    await postJson(`${h.url}/v1/publish`, { channel: 'orders.eu', data: 1 }, { authorization: `Bearer ${ORDERS_KEY}` });
    await postJson(`${h.url}/v1/publish`, { channel: 'billing', data: 1 }, { authorization: `Bearer ${ORDERS_KEY}` });
    await postJson(`${h.url}/v1/publish`, { channel: 'orders.eu', data: 1 }, { authorization: `Bearer ${ORDERS_KEY}x` });
    await fetch(`${h.url}/v1/stream?channel=billing&token=${token}`);
    await fetch(`${h.url}/v1/stream?channel=orders.eu&token=${token}x`);
    await waitFor(() => h.logs.filter((l) => l.msg === 'request refused').length >= 4, 5_000, 'refusals logged');
    const text = JSON.stringify(h.logs);
    for (const secret of [ORDERS_KEY, token, token.split('.')[2]!, TEST_SECRET]) assert.ok(!text.includes(secret));
    assert.ok(h.logs.some((l) => l.code === 'PUBLISH_FORBIDDEN'));
  } finally {
    await h.stop();
  }
});
