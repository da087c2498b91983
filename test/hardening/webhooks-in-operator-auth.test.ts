import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startInProcess } from '../helpers/herald.js';
import { send, stripeRequest } from '../helpers/webhook-signers.js';

const SECRET = 'whsec_operator_test_secret';
const ADMIN_KEY = 'admin-key-0123456789abcdef';
const PUBLISH_KEY = 'publish-key-0123456789abcdef';

let h: Awaited<ReturnType<typeof startInProcess>>;
before(async () => {
  h = await startInProcess({
    auth: { apiKeys: [{ key: ADMIN_KEY, scopes: ['admin'] }, { key: PUBLISH_KEY, scopes: ['publish:>'] }] },
    sources: { stripe: { provider: 'stripe', secret: SECRET, channel: 'orders' } },
  });
});
after(() => h.close());

const auth = (key: string) => ({ authorization: `Bearer ${key}` });

test('with auth configured, the provider endpoint needs only the signature, not an API key', async () => {
  const res = await send(`${h.url}/v1/webhooks/stripe`, stripeRequest({ id: 'evt_op_1', type: 'charge.refunded' }, SECRET));
  assert.equal(res.status, 200, JSON.stringify(res.json));
});

test('the inbound log and replay are operator APIs: anonymous 401, publish-only 403, admin 200', async () => {
  const list = `${h.url}/v1/webhooks/stripe/received`;
  assert.equal((await fetch(list)).status, 401);
  assert.equal((await fetch(list, { headers: auth(PUBLISH_KEY) })).status, 403);
  const ok = await fetch(list, { headers: auth(ADMIN_KEY) });
  assert.equal(ok.status, 200);
  const [receipt] = ((await ok.json()) as { received: { id: string }[] }).received;
  const replay = `${list}/${receipt!.id}/replay`;
  assert.equal((await fetch(replay, { method: 'POST' })).status, 401);
  assert.equal((await fetch(replay, { method: 'POST', headers: auth(PUBLISH_KEY) })).status, 403);
  assert.equal((await fetch(replay, { method: 'POST', headers: auth(ADMIN_KEY) })).status, 201);
});
