import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { test } from 'node:test';
import { needService } from '../test/helpers/service.js';
import { Target } from './bench-targets.js';
import { LoadDriver } from './load-driver.js';
import { NCHAN_MODULE, NGINX_BIN } from './peers.js';

const nchanHere = existsSync(NGINX_BIN) && existsSync(NCHAN_MODULE);
const HOW = `install nginx and libnginx-mod-nchan (apt-get install nginx-light libnginx-mod-nchan), or set BENCH_NGINX and BENCH_NCHAN_MODULE`;

for (const transport of ['sse', 'ws'] as const) {
  test(`nchan from bench/peers/nchan.conf: every event reaches every ${transport === 'sse' ? 'SSE' : 'WebSocket'} subscriber, read by the benchmark's own subscribers`, async (t) => {
    if (!needService(t, nchanHere, 'nginx with the nchan module', HOW)) return;
    const target = await Target.start({ kind: 'nchan', transport, store: 'memory', sync: 'full' });
    const load = new LoadDriver(1);
    try {
      load.useTarget(transport, target.url, target.streamUrl, () => target.cpuMs(), target.server);
      await load.connectTo(3);
      await load.waitLive();
      const m = await load.measure({ mode: 'burst', count: 20, inflight: 4 });
      assert.equal(m.publishes, 20, JSON.stringify(m.failures));
      assert.equal(m.expected, 60);
      assert.equal(m.received, 60);
      assert.equal(m.duplicates, 0);
    } finally {
      await load.close();
      await target.stop();
    }
  });
}

test('nchan from bench/peers/nchan.conf keeps messages: an SSE subscriber that comes back with Last-Event-ID gets the ones it missed', async (t) => {
  if (!needService(t, nchanHere, 'nginx with the nchan module', HOW)) return;
  const target = await Target.start({ kind: 'nchan', transport: 'sse', store: 'memory', sync: 'full' });
  try {
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      // 202: stored, no subscriber yet; the answer names the message's id.
      const res = await fetch(`${target.url}/pub?channel=resume`, { method: 'POST', body: `{"n":${n}}` });
      const info = await res.text();
      assert.ok(res.status === 201 || res.status === 202, `${res.status} ${info}`);
      const id = /last message id: (\S+)/.exec(info)?.[1];
      assert.ok(id, info);
      ids.push(id);
    }
    const text = await readSse(target.url, ids[0]!, 2);
    assert.match(text, /data: \{"n":2\}\n\n[^]*data: \{"n":3\}\n\n/);
    assert.doesNotMatch(text, /"n":1/);
  } finally {
    await target.stop();
  }
});

/** Opens an SSE stream of channel `resume` with Last-Event-ID and reads until `frames` data lines came. */
function readSse(url: string, lastEventId: string, frames: number): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = connect({ host: u.hostname, port: Number(u.port) }, () => {
      socket.write(`GET /sub?channel=resume HTTP/1.1\r\nHost: ${u.host}\r\nAccept: text/event-stream\r\nLast-Event-ID: ${lastEventId}\r\n\r\n`);
    });
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      text += d;
      if ((text.match(/\ndata: /g) ?? []).length >= frames) {
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('error', reject);
  });
}
