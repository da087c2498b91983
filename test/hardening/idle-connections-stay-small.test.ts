import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startInProcess } from '../helpers/herald.js';

/**
 * An idle connection costs the server what its socket, node:http and `ws` need, and one small
 * record of Herald's: the listeners on its socket, response and WebSocket are shared by every
 * connection, and what a connection does not use (queues, presence, an empty Map) is not made.
 * A closure or a `once` wrapper per connection is some 100-200 bytes, and there were over a
 * dozen: at 10,000 idle connections that is tens of megabytes. The clients run in a process of
 * their own, so the heap measured here is the server's alone.
 */

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const CONNECTIONS = 1_000;
/** V8 heap per idle connection, at most (measured here: ~4.1 KB WebSocket; it was ~6.7 KB). */
const WS_HEAP_BYTES_PER_CONNECTION = 5_400;
/** V8 heap per idle connection, at most (measured here: ~5.0 KB SSE, most of it node:http's; it was ~6.1 KB). */
const SSE_HEAP_BYTES_PER_CONNECTION = 5_700;
const LIVE_TIMEOUT_MS = 30_000;

/** Opens `count` idle subscribers of channel `idle` from a child process; resolves once all are open. */
const CLIENTS = `
const net = require('node:net');
const WebSocket = require('ws');
const [url, transport, count] = process.argv.slice(1);
const { hostname, port } = new URL(url);
const keep = [];
let open = 0;
const opened = () => { if (++open === Number(count)) process.stdout.write('open\\n'); };
for (let i = 0; i < Number(count); i++) {
  if (transport === 'ws') {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + '/v1/ws');
    ws.once('open', () => ws.send(JSON.stringify({ op: 'subscribe', channel: 'idle' })));
    ws.once('message', opened);
    keep.push(ws);
  } else {
    const s = net.connect(Number(port), hostname, () => s.write('GET /v1/stream?channel=idle HTTP/1.1\\r\\nHost: ' + hostname + '\\r\\n\\r\\n'));
    s.once('data', opened);
    keep.push(s);
  }
}
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

async function heapUsed(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  return process.memoryUsage().heapUsed;
}

for (const [transport, budget] of [
  ['ws', WS_HEAP_BYTES_PER_CONNECTION],
  ['sse', SSE_HEAP_BYTES_PER_CONNECTION],
] as const) {
  test(`an idle ${transport === 'ws' ? 'WebSocket' : 'SSE stream'} holds at most ${budget} bytes of heap`, async (t) => {
    const h = await startInProcess();
    t.after(() => h.close());
    // Subscriptions Herald holds of its own, before any client.
    const own = h.herald.hub.subscriptionCount;
    const subscribed = () => h.herald.hub.subscriptionCount - own;
    const run = async (count: number): Promise<() => void> => {
      const child = spawn(process.execPath, ['-e', CLIENTS, h.url, transport, String(count)], { stdio: ['pipe', 'pipe', 'inherit'] });
      const stop = () => {
        child.stdin!.end();
        child.kill();
      };
      t.after(stop);
      const [line] = (await Promise.race([
        once(child.stdout!, 'data'),
        new Promise((_, reject) => setTimeout(() => reject(new Error('clients did not open in time')), LIVE_TIMEOUT_MS)),
      ])) as [Buffer];
      assert.equal(line.toString().trim(), 'open');
      const deadline = Date.now() + LIVE_TIMEOUT_MS;
      while (subscribed() < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(subscribed(), count);
      return stop;
    };
    // Warm up: the code paths loaded and compiled, so the growth measured is the connections'.
    const stopWarm = await run(50);
    stopWarm();
    const deadline = Date.now() + LIVE_TIMEOUT_MS;
    while (subscribed() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const before = await heapUsed();
    await run(CONNECTIONS);
    const perConnection = ((await heapUsed()) - before) / CONNECTIONS;
    t.diagnostic(`${transport}: ${Math.round(perConnection)} bytes of heap per idle connection`);
    assert.ok(perConnection <= budget, `${Math.round(perConnection)} bytes of heap per idle ${transport} connection (at most ${budget})`);
  });
}
