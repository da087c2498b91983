import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';

/** Reads an SSE stream on a raw socket and keeps each read's event ids apart. */
function rawStream(url: string, channel: string) {
  const u = new URL(url);
  const reads: string[][] = [];
  const socket = connect({ host: u.hostname, port: Number(u.port) }, () =>
    socket.write(`GET /v1/stream?channel=${channel} HTTP/1.1\r\nHost: ${u.host}\r\nAccept: text/event-stream\r\n\r\n`),
  );
  socket.on('data', (b: Buffer) => {
    const ids = [...b.toString().matchAll(/^id: ?([0-9a-z]+-\d+|\d+)$/gm)].map((m) => m[1]!);
    if (ids.length > 0) reads.push(ids);
  });
  return { reads, close: () => socket.destroy() };
}

test('events that come within the write window go out in one write, in order; a lone event does not wait', async () => {
  const h = await startInProcess({ dispatch: { writeWindowMs: 400 } });
  try {
    const s = rawStream(h.url, 'w');
    await waitFor(async () => {
      await postJson(`${h.url}/v1/publish`, { channel: 'w', data: 'probe' });
      return s.reads.length > 0;
    }, 5_000, 'the stream to be live');
    // Quiet for longer than the window: the next event is written at once.
    await new Promise((r) => setTimeout(r, 600));
    const seen = s.reads.length;
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await postJson(`${h.url}/v1/publish`, { channel: 'w', data: i })).json.id as string);
    await waitFor(() => s.reads.flat().includes(ids[3]!), 2_000, 'the four events');
    // The first went out alone; the three that came within its window waited and shared a write.
    assert.deepEqual(s.reads.slice(seen), [[ids[0]], ids.slice(1)]);
    s.close();
  } finally {
    await h.close();
  }
});

test('with writeWindowMs 0 every publish is written on its own', async () => {
  const h = await startInProcess({ dispatch: { writeWindowMs: 0 } });
  try {
    const s = rawStream(h.url, 'w');
    const ids: string[] = [];
    await waitFor(async () => {
      ids.push((await postJson(`${h.url}/v1/publish`, { channel: 'w', data: 'probe' })).json.id as string);
      return s.reads.length > 0;
    }, 2_000, 'the stream to be live');
    const before = s.reads.flat().length;
    for (let i = 0; i < 3; i++) {
      const id = (await postJson(`${h.url}/v1/publish`, { channel: 'w', data: i })).json.id as string;
      await waitFor(() => s.reads.flat().includes(id), 2_000, `event ${id}`);
    }
    assert.equal(s.reads.flat().length, before + 3);
    assert.deepEqual(s.reads.slice(-3).map((r) => r.length), [1, 1, 1]);
    s.close();
  } finally {
    await h.close();
  }
});
