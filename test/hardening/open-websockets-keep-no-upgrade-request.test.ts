import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket from 'ws';
import { startInProcess } from '../helpers/herald.js';

/**
 * An open WebSocket needs nothing of the HTTP request that upgraded it: its headers and first
 * bytes are read once, at admission. A listener that kept the upgrade handler's scope would hold
 * that request for the connection's whole life, about 1.5 KB per idle connection (a tenth of a
 * server's memory at 10,000 of them), with and without auth.
 */

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const CONNECTIONS = 20;

async function openSubscribed(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`, { headers });
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () => ws.send(JSON.stringify({ op: 'subscribe', channel: 'idle' })));
    ws.once('message', () => resolve());
  });
  return ws;
}

for (const [name, config] of [
  ['without auth', {}],
  ['with API keys', { auth: { apiKeys: [{ key: 'k'.repeat(32), name: 'reader', scopes: ['subscribe:>'] }] } }],
] as const) {
  test(`open WebSockets keep no reference to their upgrade request (${name})`, async (t) => {
    const h = await startInProcess(config);
    t.after(() => h.close());
    const requests: WeakRef<IncomingMessage>[] = [];
    h.herald.app.server.prependListener('upgrade', (req: IncomingMessage) => requests.push(new WeakRef(req)));
    const headers: Record<string, string> = name === 'with API keys' ? { authorization: `Bearer ${'k'.repeat(32)}` } : {};
    const sockets: WebSocket[] = [];
    for (let i = 0; i < CONNECTIONS; i++) sockets.push(await openSubscribed(h.url, headers));
    t.after(() => sockets.forEach((s) => s.terminate()));
    assert.equal(requests.length, CONNECTIONS);
    // A WeakRef holds its target until the current job ends: collect across a few turns.
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setImmediate(r));
      gc();
    }
    const kept = requests.filter((r) => r.deref() !== undefined).length;
    assert.equal(kept, 0, `${kept} of ${CONNECTIONS} upgrade requests still held by open connections`);
    assert.ok(sockets.every((s) => s.readyState === WebSocket.OPEN));
  });
}
