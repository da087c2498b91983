import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startInProcess } from '../helpers/herald.js';
import { userToken, TEST_SECRET } from '../helpers/tokens.js';

const ADMIN_KEY = 'admin-key-0123456789abcdefghij';
const PUBLISHER_KEY = 'publisher-key-0123456789abcdefgh';
const SOURCES = { stripe: { provider: 'stripe', secret: 'whsec_test_0123456789abcdef', channel: 'stripe.{type}' } };
const AUTH = {
  apiKeys: [
    { key: ADMIN_KEY, name: 'admin', scopes: ['admin'] },
    { key: PUBLISHER_KEY, name: 'pub', scopes: ['publish:>'] },
  ],
  jwt: { secret: TEST_SECRET },
};

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, text, code: res.status >= 400 ? (JSON.parse(text) as { error: { code: string } }).error.code : undefined };
}

test('with auth configured, /metrics and /demo/orders/config need credentials', async () => {
  const h = await startInProcess({ store: { type: 'memory' }, auth: AUTH, sources: SOURCES });
  try {
    const anon = await get(`${h.url}/metrics`);
    assert.equal(anon.status, 401);
    assert.equal(anon.code, 'UNAUTHORIZED');
    assert.ok(!anon.text.includes('herald_'), 'no metric leaks in the refusal');
    assert.equal((await get(`${h.url}/metrics`, { authorization: `Bearer ${PUBLISHER_KEY}` })).code, 'FORBIDDEN');
    const admin = await get(`${h.url}/metrics`, { authorization: `Bearer ${ADMIN_KEY}` });
    assert.equal(admin.status, 200);
    assert.match(admin.text, /herald_/);

    const config = await get(`${h.url}/demo/orders/config`);
    assert.equal(config.status, 401);
    assert.ok(!config.text.includes('"source":"stripe"'));
    const reader = await userToken('u1', ['stripe.>']);
    assert.equal((await get(`${h.url}/demo/orders/config`, { authorization: `Bearer ${reader}` })).status, 200);
    assert.equal((await get(`${h.url}/demo/orders/config`, { authorization: `Bearer ${ADMIN_KEY}` })).status, 200);
    const other = await userToken('u2', ['chat.>']);
    assert.equal((await get(`${h.url}/demo/orders/config`, { authorization: `Bearer ${other}` })).code, 'SUBSCRIBE_FORBIDDEN');
  } finally {
    await h.close();
  }
});

test('metrics.public opens /metrics to a scraper; a public demo channel opens the demo config', async () => {
  const h = await startInProcess({
    store: { type: 'memory' },
    auth: { ...AUTH, publicChannels: ['stripe.>'] },
    sources: SOURCES,
    metrics: { public: true },
  });
  try {
    const scrape = await get(`${h.url}/metrics`);
    assert.equal(scrape.status, 200);
    assert.match(scrape.text, /herald_/);
    const config = await get(`${h.url}/demo/orders/config`);
    assert.equal(config.status, 200);
    assert.match(config.text, /"source":"stripe"/);
  } finally {
    await h.close();
  }
});

test('dev mode: /metrics and the demo config stay open, as before', async () => {
  const h = await startInProcess({ store: { type: 'memory' }, sources: SOURCES });
  try {
    assert.equal((await get(`${h.url}/metrics`)).status, 200);
    assert.equal((await get(`${h.url}/demo/orders/config`)).status, 200);
  } finally {
    await h.close();
  }
});
