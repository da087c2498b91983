import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { startInProcess, waitFor } from '../helpers/herald.js';
import { TEST_SECRET, userToken } from '../helpers/tokens.js';

/**
 * A connection holds a place in `connectionsPerIdentity` and a presence membership from the
 * moment it is admitted. Every way it can end must give both back exactly once: a client that
 * resets its socket while its token is being checked, before the response head, during the
 * replay, or once the stream is open. Otherwise an attacker with one valid token locks its
 * identity (or, with a stolen one, its victim) out with 429 until a restart.
 */

const PER_IDENTITY = 3;
const ABORTED = 200;
/** Aborted requests sent at once: enough to overlap the token checks, few enough for a loaded machine. */
const WAVE = 25;

type Moment = 'written' | 'immediate' | 'timer' | 'response';
const MOMENTS: Moment[] = ['written', 'immediate', 'timer', 'response'];

/** Writes one request on a raw socket and resets it (TCP RST) at `moment`; resolves once it is gone. */
function sendThenReset(port: number, request: string, moment: Moment, i: number): Promise<void> {
  return new Promise((resolve) => {
    const socket: Socket = connect({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    socket.once('close', () => resolve());
    const reset = () => {
      if (!socket.destroyed) socket.resetAndDestroy();
    };
    socket.once('connect', () => {
      socket.write(request, () => {
        if (moment === 'written') reset();
        else if (moment === 'immediate') setImmediate(reset);
        else if (moment === 'timer') setTimeout(reset, i % 7);
      });
    });
    // 'response': as soon as the first bytes of the answer (the head, the replay) arrive.
    socket.once('data', reset);
  });
}

test('aborted SSE and WebSocket requests give back every connection slot and presence membership', async (t) => {
  const h = await startInProcess({
    store: { type: 'memory' },
    limits: {
      applyToLoopback: true,
      connectPerSecond: 0,
      connectionsPerIp: 0,
      connectionsPerIdentity: PER_IDENTITY,
      messagesPerSecondPerConnection: 0,
    },
    auth: { jwt: { secret: TEST_SECRET } },
    presence: { channels: ['room', 'feed'], leaveDelaySeconds: 0 },
  });
  t.after(() => h.close());
  const port = Number(new URL(h.url).port);
  const token = await userToken('alice', ['room', 'feed', 'broadcast']);
  // Something to replay, so a reset can also land during a replay.
  for (let i = 0; i < 50; i++) await h.herald.hub.publish([{ channel: 'room', type: 'message', data: JSON.stringify('x'.repeat(200)) }]);

  const wsHead = (path: string) =>
    `GET ${path}?token=${token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
  const requests = [
    `GET /v1/stream?channel=room HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n`,
    `GET /v1/stream?channel=room&token=${token} HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: 0\r\n\r\n`,
    `GET /sse?token=${token} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
    wsHead('/v1/ws'),
    wsHead('/ws'),
  ];
  for (let sent = 0; sent < ABORTED; sent += WAVE) {
    await Promise.all(
      Array.from({ length: WAVE }, (_, k) => {
        const i = sent + k;
        return sendThenReset(port, requests[i % requests.length]!, MOMENTS[Math.floor(i / requests.length) % MOMENTS.length]!, i);
      }),
    );
  }

  // The server may still be finishing some of the aborted requests: retry until the identity
  // gets all of its places (a leak never comes back, so a leak fails here).
  const metrics = h.herald.metrics;
  const presence = h.herald.security.presence;
  await waitFor(
    async () => {
      const before = metrics.connectionCount('sse');
      const streams = await Promise.all(Array.from({ length: PER_IDENTITY }, () => openStream(h.url, token)));
      const ok =
        streams.every((s) => s.status === 200) &&
        JSON.stringify(presence.snapshot('room').members) === JSON.stringify([{ identity: 'alice', connections: PER_IDENTITY }]);
      if (ok) {
        // The limit still holds: one more is refused.
        const extra = await openStream(h.url, token);
        assert.equal(extra.status, 429);
      }
      for (const s of streams) s.close();
      await waitFor(() => metrics.connectionCount('sse') <= before, 10_000, 'the probe streams to close');
      return ok;
    },
    20_000,
    `${PER_IDENTITY} streams for the identity, and no leftover member`,
  );
  const left = () => ({
    members: [...presence.snapshot('room').members, ...presence.snapshot('feed').members],
    connections: (['sse', 'sse_compat', 'ws', 'ws_compat'] as const).map((tr) => metrics.connectionCount(tr)),
  });
  await waitFor(
    () => JSON.stringify(left()) === JSON.stringify({ members: [], connections: [0, 0, 0, 0] }),
    10_000,
    'no member and no connection left',
  ).catch(() => assert.fail(`left behind: ${JSON.stringify(left())}`));
});

async function openStream(url: string, token: string) {
  const ac = new AbortController();
  const res = await fetch(`${url}/v1/stream?channel=room`, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
  if (res.status !== 200) await res.body?.cancel();
  return { status: res.status, close: () => ac.abort() };
}
