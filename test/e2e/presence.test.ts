import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { packageRoot } from '../../src/http/routes/pages.js';
import { openEventSource } from '../helpers/clients.js';
import { openWsWith, type WsClient } from '../helpers/auth-clients.js';
import { startInProcess, waitFor } from '../helpers/herald.js';
import { TEST_SECRET, userToken } from '../helpers/tokens.js';

const ROOM = 'chat.room-1';
const LEAVE_DELAY_S = 1;

interface Snapshot {
  channel: string;
  members: { identity: string; connections: number }[];
  anonymous: number;
}

describe('presence: members per identity, join/leave events, debounced leaves, heartbeat expiry', () => {
  let h: Awaited<ReturnType<typeof startInProcess>>;
  let ws: string;
  let watcher: WsClient;
  const open: WsClient[] = [];
  const tokenFor = (sub: string) => userToken(sub, ['chat.>']);
  const snapshot = async (): Promise<Snapshot> => {
    const res = await fetch(`${h.url}/v1/channels/${ROOM}/presence`, { headers: { authorization: `Bearer ${await tokenFor('watcher')}` } });
    assert.equal(res.status, 200);
    return (await res.json()) as Snapshot;
  };
  const member = async (id: string) => (await snapshot()).members.find((m) => m.identity === id);
  const changes = (kind: string, id: string) => watcher.frames.filter((f) => f.op === kind && f.identity === id).length;
  const join = async (sub: string) => {
    const c = await openWsWith(`${ws}?token=${await tokenFor(sub)}`);
    assert.equal((await c.request({ op: 'subscribe', channel: ROOM })).op, 'ack');
    open.push(c);
    return c;
  };

  before(async () => {
    h = await startInProcess({
      store: { type: 'memory' },
      websocket: { pingIntervalSeconds: 0.3 },
      auth: { jwt: { secret: TEST_SECRET } },
      presence: { channels: ['chat.>'], leaveDelaySeconds: LEAVE_DELAY_S },
    });
    ws = h.url.replace('http', 'ws') + '/v1/ws';
    watcher = await openWsWith(`${ws}?token=${await tokenFor('watcher')}`);
    assert.equal((await watcher.request({ op: 'subscribe', channel: ROOM, presence: true })).op, 'ack');
  });
  after(async () => {
    for (const c of open) c.close();
    watcher.close();
    await h.close();
  });

  test('three connections of one identity (two sockets, one SSE stream) are one member; two identities, two joins', async () => {
    const sse = openEventSource(`${h.url}/v1/stream?channel=${ROOM}&presence=true&token=${await tokenFor('u1')}`, ['herald.join', 'herald.leave']);
    try {
      await join('u1');
      await join('u1');
      await join('u2');
      await waitFor(async () => (await member('u1'))?.connections === 3, 5_000, 'u1 with three connections');
      const snap = await snapshot();
      assert.deepEqual(
        snap.members.filter((m) => m.identity !== 'watcher'),
        [
          { identity: 'u1', connections: 3 },
          { identity: 'u2', connections: 1 },
        ],
      );
      await waitFor(() => changes('join', 'u2') === 1, 5_000, 'the join of u2');
      assert.equal(changes('join', 'u1'), 1, 'one join for u1, however many tabs');
      // the SSE stream asked for presence too and sees u2 arrive
      await sse.until(1);
      assert.ok(sse.messages.some((m) => m.type === 'herald.join' && JSON.parse(m.data).identity === 'u2'));
      // the WebSocket presence op answers the same list
      const viaOp = await watcher.request({ op: 'presence', channel: ROOM });
      assert.deepEqual(viaOp.members, snap.members);
    } finally {
      sse.close();
    }
    await waitFor(async () => (await member('u1'))?.connections === 2, 5_000, 'the SSE connection to leave');
    assert.equal(changes('leave', 'u1'), 0);
  });

  test('a reconnect within the leave delay sends no leave/join pair; leaving for good sends one leave', async () => {
    for (const c of open.splice(0)) c.close();
    await waitFor(async () => (await member('u1'))?.connections === 0, 5_000, 'u1 to be in its leave window');
    await join('u1'); // back in time: a page reload
    await join('u2');
    // wait past the delay: no leave/join pair came
    const afterWindow = Date.now() + LEAVE_DELAY_S * 1000 + 300;
    await waitFor(() => Date.now() > afterWindow, 5_000, 'the leave window to pass');
    assert.equal(changes('leave', 'u1'), 0);
    assert.equal(changes('join', 'u1'), 1);
    for (const c of open.splice(0)) c.close();
    await waitFor(() => changes('leave', 'u1') === 1 && changes('leave', 'u2') === 1, 5_000, 'the leaves');
    assert.equal((await snapshot()).members.filter((m) => m.identity !== 'watcher').length, 0);
  });

  test('a client that stops answering (SIGSTOP) leaves after heartbeat expiry; a SIGKILLed one after the delay', async () => {
    const script = `
      const WebSocket = require('ws');
      const ws = new WebSocket(process.argv[1]);
      ws.on('open', () => ws.send(JSON.stringify({ op: 'subscribe', channel: '${ROOM}', ref: 1 })));
      ws.on('message', (m) => { if (JSON.parse(m).op === 'ack') console.log('joined'); });
    `;
    for (const [sub, signal] of [['frozen', 'SIGSTOP'], ['killed', 'SIGKILL']] as const) {
      const child = spawn(process.execPath, ['-e', script, `${ws}?token=${await tokenFor(sub)}`], {
        cwd: packageRoot(),
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = new Promise((r) => child.once('exit', r));
      try {
        let out = '';
        child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        await waitFor(() => out.includes('joined'), 10_000, `${sub} to join`);
        await waitFor(() => changes('join', sub) === 1, 5_000, `the join of ${sub}`);
        const stoppedAt = Date.now();
        child.kill(signal);
        await waitFor(() => changes('leave', sub) === 1, 10_000, `the leave of ${sub}`);
        const took = Date.now() - stoppedAt;
        // the leave waits out the debounce after the connection is gone, never sooner
        assert.ok(took >= LEAVE_DELAY_S * 1000, `${sub} left after ${took} ms`);
        assert.equal(await member(sub), undefined);
      } finally {
        child.kill('SIGKILL');
        await exited;
      }
    }
  });

  test('members live in the backend set\'s presence store, the one a shared backend replaces', async () => {
    const c = await join('u3');
    const store = h.herald.backend.presence;
    assert.equal(h.herald.security.presence, store, 'every transport counts members in the backend\'s store');
    await waitFor(() => store.snapshot(ROOM).members.some((m) => m.identity === 'u3'), 5_000, 'u3 in the backend\'s store');
    assert.deepEqual((await member('u3')), { identity: 'u3', connections: 1 });
    c.close();
    open.splice(open.indexOf(c), 1);
  });

  test('presence is refused where it is not enabled, and to those who may not subscribe', async () => {
    const off = await fetch(`${h.url}/v1/channels/orders/presence`, { headers: { authorization: `Bearer ${await tokenFor('x')}` } });
    assert.equal(off.status, 404);
    assert.equal(((await off.json()) as { error: { code: string } }).error.code, 'PRESENCE_NOT_ENABLED');
    assert.equal((await fetch(`${h.url}/v1/channels/${ROOM}/presence`)).status, 401);
    const other = await fetch(`${h.url}/v1/channels/${ROOM}/presence?token=${await userToken('y', ['news'])}`);
    assert.equal(other.status, 403);
  });
});
