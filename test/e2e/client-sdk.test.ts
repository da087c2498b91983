import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { connect, type HeraldClient, type HeraldClientError, type Status, type WebSocketConstructor } from '../../packages/client/src/index.js';
import { cutProxy } from '../helpers/cut-proxy.js';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';
import { sign, TEST_SECRET, userToken } from '../helpers/tokens.js';

// @herald/client in Node 20 against a real Herald, over each transport: events reach a
// subscription in order across a dropped network with no gap and no duplicate, publishes are
// acknowledged with their stored id, a lost position ends in onReset, tokens are renewed before
// they expire without a reconnect, and refused credentials stop the client with their code.

const PUBLISHER = 'sdk-publisher-key-0123456789abcdef';
/** milliseconds: reconnect delays kept short so the tests wait little. */
const BACKOFF = { backoffBaseMs: 20, backoffMaxMs: 200 };
/** milliseconds: longest any wait may take on a busy 2-core machine. */
const WAIT_MS = 15_000;

type ChatMap = { 'chat.message': { text: string; n: number } };

for (const transport of ['websocket', 'sse'] as const) {
  describe(`@herald/client over ${transport}`, () => {
    let h: Awaited<ReturnType<typeof startInProcess>>;
    let proxy: Awaited<ReturnType<typeof cutProxy>>;
    const clients: HeraldClient<any>[] = [];
    const publish = (channel: string, data: unknown) =>
      postJson(`${h.url}/v1/publish`, { channel, data, type: 'chat.message' }, { authorization: `Bearer ${PUBLISHER}` });
    const open = (o: Partial<Parameters<typeof connect>[0]> & { statuses?: Status[] } = {}) => {
      const c = connect<ChatMap>({
        url: proxy.url,
        transport,
        WebSocket: WebSocket as unknown as WebSocketConstructor,
        getToken: () => userToken('u1', ['room.>'], ['room.>']),
        ...BACKOFF,
        onStatus: (s) => o.statuses?.push(s),
        ...o,
      });
      clients.push(c);
      return c;
    };

    before(async () => {
      h = await startInProcess({
        store: { type: 'memory' },
        auth: { apiKeys: [{ key: PUBLISHER, scopes: ['publish:>'] }], jwt: { secret: TEST_SECRET, clockToleranceSeconds: 0 } },
        presence: { channels: ['room.>'], leaveDelaySeconds: 0 },
      });
      proxy = await cutProxy(h.url);
    });
    after(async () => {
      for (const c of clients) c.close();
      await proxy.close();
      await h.close();
    });

    test('subscribe, then publish: the promise resolves with the stored id, the handler gets that event typed', async () => {
      const c = open();
      const got: Array<{ id: string; type: string; text: string }> = [];
      c.subscribe('room.a', (e) => got.push({ id: e.id, type: e.type, text: e.data.text }));
      await waitFor(() => c.status === 'open', WAIT_MS, 'open');
      // SSE: the stream is open once its subscriptions are; WebSocket: the ack precedes the events.
      const id = await c.publish('room.a', { text: 'hello', n: 1 }, { type: 'chat.message' });
      assert.match(id, /^[0-9a-z]+-\d+$/);
      await waitFor(() => got.length === 1, WAIT_MS, 'the published event');
      assert.deepEqual(got, [{ id, type: 'chat.message', text: 'hello' }]);
      assert.deepEqual(c.position, { 'room.a': id });
      const refused = await c.publish('elsewhere', { text: 'no', n: 0 }).then(
        () => undefined,
        (e: HeraldClientError) => e,
      );
      assert.ok(refused, 'a publish outside the token is refused');
      assert.match(refused.code, /FORBIDDEN$/);
      c.close();
    });

    test('a dropped network: the subscription resumes after its last id, with no gap and no duplicate', async () => {
      const statuses: Status[] = [];
      const c = open({ statuses });
      const got: number[] = [];
      c.subscribe('room.drop', (e) => got.push(e.data.n));
      c.subscribe('room.>', () => {}); // an overlapping pattern: the same events twice on the wire
      await waitFor(() => c.status === 'open', WAIT_MS, 'open');
      for (let n = 1; n <= 3; n++) await publish('room.drop', { text: 'before', n });
      await waitFor(() => got.length === 3, WAIT_MS, 'the first three');
      proxy.refuse = true;
      proxy.cut();
      await waitFor(() => statuses.includes('reconnecting'), WAIT_MS, 'the drop noticed');
      for (let n = 4; n <= 8; n++) await publish('room.drop', { text: 'during', n });
      proxy.refuse = false;
      for (let n = 9; n <= 10; n++) await publish('room.drop', { text: 'after', n });
      await waitFor(() => got.length >= 10, WAIT_MS, `all ten (have ${got.join(',')})`);
      assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      assert.equal(c.status, 'open');
      c.close();
    });

    test('a position the server no longer has (its log was lost) calls onReset, then events go on live', async () => {
      const lost = await startInProcess({ store: { type: 'memory' } });
      const oldId = (await postJson(`${lost.url}/v1/publish`, { channel: 'room.reset', data: 1 })).json.id as string;
      await lost.close();
      const resets: string[] = [];
      const got: number[] = [];
      const c = open({ position: { 'room.reset': oldId }, onReset: (channel, reason) => resets.push(`${channel}:${reason}`) });
      c.subscribe('room.reset', (e) => got.push(e.data.n));
      await waitFor(() => resets.length === 1, WAIT_MS, 'the reset');
      assert.deepEqual(resets, ['room.reset:epoch_changed']);
      await publish('room.reset', { text: 'live', n: 7 });
      await waitFor(() => got.length === 1, WAIT_MS, 'a live event after the reset');
      assert.deepEqual(got, [7]);
      c.close();
    });

    test('a token is renewed through getToken before it expires: no reconnect, no event lost', async () => {
      const statuses: Status[] = [];
      let minted = 0;
      /** seconds: the life of each token; renewal comes at half of it. */
      const lifeS = 3;
      let firstExpiry = 0;
      const c = open({
        statuses,
        getToken: async () => {
          minted++;
          const exp = Math.floor(Date.now() / 1000) + lifeS;
          if (firstExpiry === 0) firstExpiry = exp * 1000;
          return sign({ sub: 'u1', exp, herald: { subscribe: ['room.>'], publish: [] } });
        },
      });
      const got: number[] = [];
      c.subscribe('room.renew', (e) => got.push(e.data.n));
      await waitFor(() => c.status === 'open', WAIT_MS, 'open');
      await publish('room.renew', { text: 'a', n: 1 });
      await waitFor(() => minted >= 2, WAIT_MS, 'a renewal');
      await waitFor(() => Date.now() > firstExpiry + 1_000, WAIT_MS, 'the first token expired');
      await publish('room.renew', { text: 'b', n: 2 });
      await waitFor(() => got.length === 2, WAIT_MS, 'the event after the first token expired');
      assert.deepEqual(got, [1, 2]);
      assert.ok(!statuses.includes('reconnecting'), `statuses: ${statuses.join(',')}`);
      c.close();
    });

    test('refused credentials stop the client with the server code (no reconnect loop)', async () => {
      const errors: HeraldClientError[] = [];
      let asked = 0;
      const c = open({
        getToken: () => (asked++, sign({ sub: 'u1' }, 'another-secret-0123456789-abcdefghijklmnop')),
        onError: (e) => errors.push(e),
      });
      c.subscribe('room.x', () => {});
      await waitFor(() => c.status === 'failed', WAIT_MS, 'failed');
      assert.equal(errors.at(-1)!.code, 'TOKEN_INVALID');
      assert.equal(errors.at(-1)!.status, 401);
      assert.equal(errors.at(-1)!.fatal, true);
      assert.ok(asked <= 2, `getToken was asked ${asked} times`);
      await assert.rejects(c.publish('room.x', { text: 'x', n: 0 }), (e: HeraldClientError) => e.code === 'CLOSED' || e.status === 401);
      const forbidden = open({ getToken: () => userToken('u1', ['room.>']) , onError: (e) => errors.push(e) });
      forbidden.subscribe('secret.stuff', () => {});
      await waitFor(() => errors.some((e) => e.code === 'SUBSCRIBE_FORBIDDEN'), WAIT_MS, 'SUBSCRIBE_FORBIDDEN');
      c.close();
      forbidden.close();
    });

    test('presence: members of a channel, and join/leave changes', async () => {
      const watcher = open({ getToken: () => userToken('watcher', ['room.>']) });
      const changes: string[] = [];
      watcher.onPresence((ch) => changes.push(`${ch.kind}:${ch.identity}`));
      watcher.subscribe('room.lobby', () => {}, { presence: true });
      await waitFor(() => watcher.status === 'open', WAIT_MS, 'open');
      await waitFor(async () => (await watcher.members('room.lobby')).members.some((m) => m.identity === 'watcher'), WAIT_MS, 'watcher a member');
      const guest = open({ getToken: () => userToken('guest', ['room.>']) });
      guest.subscribe('room.lobby', () => {});
      await waitFor(() => changes.includes('join:guest'), WAIT_MS, 'join');
      const m = await watcher.members('room.lobby');
      assert.deepEqual(m.members.map((x) => x.identity).sort(), ['guest', 'watcher']);
      guest.close();
      await waitFor(() => changes.includes('leave:guest'), WAIT_MS, 'leave');
      watcher.close();
    });
  });
}
