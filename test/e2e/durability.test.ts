import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { openEventSource, openWs } from '../helpers/clients.js';
import { seqOfId, spawnHerald, waitFor } from '../helpers/herald.js';

test('every event acknowledged with 2xx is served after SIGKILL and restart', async () => {
  const first = await spawnHerald({ store: { type: 'sqlite', sqlite: { synchronous: 'full' } } });
  const dispatcher = new Agent({ connections: 16, pipelining: 1 });
  const acked = new Set<string>();
  let stop = false;
  // A burst of concurrent publishes (single and batches); the process is killed while they fly.
  const worker = async (w: number) => {
    for (let i = 0; !stop && i < 2_000; i++) {
      const batch = i % 5 === 0;
      const body = batch
        ? [{ channel: `burst.${w}`, data: { w, i, n: 0 } }, { channel: `burst.${w}`, data: { w, i, n: 1 } }]
        : { channel: `burst.${w}`, data: { w, i } };
      try {
        const res = await request(`${first.url}/v1/publish`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          dispatcher,
        });
        const json = (await res.body.json()) as { id?: string; ids?: string[] };
        if (res.statusCode !== 201) continue;
        for (const id of json.ids ?? [json.id!]) acked.add(id);
      } catch {
        return; // the server is gone
      }
    }
  };
  const workers = Array.from({ length: 8 }, (_, w) => worker(w));
  await waitFor(() => acked.size >= 500, 20_000, '500 acknowledged events');
  await first.kill();
  stop = true;
  await Promise.all(workers);
  await dispatcher.close();

  const second = await spawnHerald({ store: { type: 'sqlite' } }, { dataDir: first.dataDir });
  try {
    const seen = new Set<string>();
    let after = '0';
    for (;;) {
      const page = (await fetch(`${second.url}/v1/events?channel=burst.*&after=${after}&limit=1000`).then((r) => r.json())) as {
        events: { id: string }[];
      };
      for (const e of page.events) seen.add(e.id);
      if (page.events.length < 1000) break;
      after = page.events[page.events.length - 1]!.id;
    }
    const lost = [...acked].filter((id) => !seen.has(id));
    assert.deepEqual(lost, [], `${lost.length} of ${acked.size} acknowledged events are missing`);
    // and new ids continue after the old ones
    const next = (await fetch(`${second.url}/v1/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"channel":"after","data":1}',
    }).then((r) => r.json())) as { id: string };
    assert.ok(seqOfId(next.id) > Math.max(...[...seen].map(seqOfId)));
  } finally {
    await second.stop();
  }
});

test('SIGTERM closes WebSockets with 1001, ends SSE streams, and exits cleanly', async () => {
  const h = await spawnHerald({ sse: { retryMs: 60_000 } });
  const es = openEventSource(`${h.url}/v1/stream?channel=x`);
  const ws = await openWs(h.url.replace('http', 'ws') + '/v1/ws');
  try {
    await waitFor(() => es.opens > 0);
    let ended = false;
    es.source.addEventListener('error', () => (ended = true));
    const code = await h.stop();
    assert.equal(code, 0);
    assert.equal((await ws.closedWith()).code, 1001);
    await waitFor(() => ended, 5_000, 'the SSE stream to end');
    assert.ok(h.logs.some((l) => l.msg === 'stopped'));
  } finally {
    es.close();
  }
});

test('start-up refuses a config file with an unknown or bad key, naming it', async () => {
  await assert.rejects(spawnHerald({ retention: { maxAgeSecond: 5 } }), /config key "retention\.maxAgeSecond": unknown key/);
  await assert.rejects(spawnHerald({ limits: { outgoingBufferBytes: -1 } }), /config key "limits\.outgoingBufferBytes"/);
});

test('dev mode: the start-up log says publishing is loopback-only', async () => {
  const h = await spawnHerald();
  try {
    assert.ok(h.logs.some((l) => typeof l.msg === 'string' && /loopback/.test(l.msg) && l.level === 40));
  } finally {
    await h.stop();
  }
});
