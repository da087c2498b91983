import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import { openEventSource } from '../helpers/clients.js';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';
import { sign, TEST_SECRET, userToken } from '../helpers/tokens.js';

const PUBLISHER = 'publisher-key-0123456789abcdef';

describe('SSE with auth: a browser-style EventSource with ?token=, a header, or a cookie', () => {
  let h: Awaited<ReturnType<typeof startInProcess>>;
  const publish = (channel: string, data: unknown) =>
    postJson(`${h.url}/v1/publish`, { channel, data }, { authorization: `Bearer ${PUBLISHER}` });

  before(async () => {
    h = await startInProcess({
      store: { type: 'memory' },
      auth: {
        apiKeys: [{ key: PUBLISHER, scopes: ['publish:>'] }],
        jwt: { secret: TEST_SECRET, clockToleranceSeconds: 0 },
        publicChannels: ['news', 'public.>'],
        cookieName: 'herald_token',
      },
    });
  });
  after(() => h.close());

  test('?token= opens a private channel and events arrive', async () => {
    const t = await userToken('u1', ['user.u1.*']);
    const es = openEventSource(`${h.url}/v1/stream?channel=user.u1.inbox&token=${t}`);
    try {
      await waitFor(() => es.source.readyState === EventSource.OPEN, 5_000, 'open');
      assert.equal((await publish('user.u1.inbox', 'hello u1')).status, 201);
      await es.until(1);
      assert.equal(es.messages[0]!.data, 'hello u1');
    } finally {
      es.close();
    }
  });

  test('the Authorization header and the cookie work the same', async () => {
    const t = await userToken('u1', ['user.u1.*']);
    const variants: Record<string, string>[] = [{ authorization: `Bearer ${t}` }, { cookie: `other=1; herald_token=${t}` }];
    for (const headers of variants) {
      const es = openEventSource(`${h.url}/v1/stream?channel=user.u1.inbox`, ['message'], headers);
      try {
        await waitFor(() => es.source.readyState === EventSource.OPEN, 5_000, 'open');
        await publish('user.u1.inbox', Object.keys(headers)[0]);
        await es.until(1);
        assert.equal(es.messages[0]!.data, Object.keys(headers)[0]);
      } finally {
        es.close();
      }
    }
  });

  test('public channels need no token; private ones answer 401 and the EventSource gives up', async () => {
    const pub = openEventSource(`${h.url}/v1/stream?channel=news`);
    try {
      await waitFor(() => pub.source.readyState === EventSource.OPEN, 5_000, 'open');
    } finally {
      pub.close();
    }
    const res = await fetch(`${h.url}/v1/stream?channel=user.u1.inbox`);
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
    // mixing a public and a private channel still needs the private one's permission
    const mixed = await fetch(`${h.url}/v1/stream?channel=news&channel=user.u1.inbox&token=${await userToken('u2', ['user.u2.*'])}`);
    assert.equal(mixed.status, 403);
    assert.equal(((await mixed.json()) as { error: { code: string } }).error.code, 'SUBSCRIBE_FORBIDDEN');
    const es = openEventSource(`${h.url}/v1/stream?channel=user.u1.inbox`);
    let failed = false;
    es.source.onerror = () => (failed = true);
    try {
      await waitFor(() => failed && es.source.readyState === EventSource.CLOSED, 5_000, 'the EventSource to give up');
    } finally {
      es.close();
    }
  });

  test('a stream whose token expires ends with a herald.error TOKEN_EXPIRED event', async () => {
    const now = Math.floor(Date.now() / 1000);
    // exp two seconds out (jose's exp is in whole seconds)
    const t = await sign({ sub: 'u1', exp: now + 2, herald: { subscribe: ['user.u1.*'] } });
    const es = openEventSource(`${h.url}/v1/stream?channel=user.u1.inbox&token=${t}`, ['message', 'herald.error']);
    let failed = false;
    es.source.onerror = () => (failed = true);
    try {
      await waitFor(() => es.source.readyState === EventSource.OPEN, 5_000, 'open');
      const err = await waitFor(() => es.messages.find((m) => m.type === 'herald.error'), 10_000, 'the expiry event');
      assert.equal(JSON.parse(err!.data).code, 'TOKEN_EXPIRED');
      // the reconnect with the same, now expired, token is refused, so the page knows to refresh it
      await waitFor(() => failed && es.source.readyState === EventSource.CLOSED, 10_000, 'the EventSource to give up');
    } finally {
      es.close();
    }
  });
});
