import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openEventSource, openWs } from '../helpers/clients.js';
import { postJson, startInProcess } from '../helpers/herald.js';

/**
 * A memory log is lost on restart and its seqs start again at 1. An id from before the restart
 * must not be read as a position in the new log: past the new head the client would wait for
 * events it will never get, below it the client would silently skip the new log's first
 * events. Ids carry the log's epoch, so both get the reset.
 */
test('an id from a log that was lost gets an epoch_changed reset, past the new head and below it', async (t) => {
  const config = { store: { type: 'memory' } };
  const first = await startInProcess(config);
  const old: string[] = [];
  for (let i = 1; i <= 5; i++) old.push((await postJson(`${first.url}/v1/publish`, { channel: 'lost', data: i })).json.id);
  await first.close();

  const h = await startInProcess(config);
  t.after(() => h.close());
  const fresh: string[] = [];
  for (let i = 1; i <= 3; i++) fresh.push((await postJson(`${h.url}/v1/publish`, { channel: 'lost', data: `new ${i}` })).json.id);
  assert.notEqual(fresh[0]!.split('-')[0], old[0]!.split('-')[0], 'a new log has a new epoch');
  let head = fresh[2]!;

  // SSE, Last-Event-ID: old[4] is past the new head (5 > 3), old[0] below it (1 < 3).
  for (const lastEventId of [old[4]!, old[0]!]) {
    const es = openEventSource(`${h.url}/v1/stream?channel=lost`, ['message', 'herald.reset'], { 'last-event-id': lastEventId });
    t.after(() => es.close());
    await es.until(1);
    assert.equal(es.messages[0]!.type, 'herald.reset', `SSE resume from ${lastEventId}`);
    assert.deepEqual(JSON.parse(es.messages[0]!.data), { reason: 'epoch_changed', lastEventId: head });
    assert.equal(es.messages[0]!.lastEventId, head);
    const live = await postJson(`${h.url}/v1/publish`, { channel: 'lost', data: 'live' });
    await es.until(2);
    assert.deepEqual(es.messages[1], { type: 'message', data: 'live', lastEventId: live.json.id });
    head = live.json.id;
    es.close();
  }

  // WebSocket, since: the same two cases.
  const c = await openWs(h.url.replace('http', 'ws') + '/v1/ws');
  t.after(() => c.close());
  for (const [i, since] of [old[4]!, old[0]!].entries()) {
    c.send({ op: 'subscribe', channel: i === 0 ? 'lost' : 'lost.>', since, ref: `s${i}` });
    const reset = await c.next((f) => f.op === 'reset' && f.channel === (i === 0 ? 'lost' : 'lost.>'));
    assert.equal(reset.reason, 'epoch_changed', `WebSocket resume from ${since}`);
    assert.equal(reset.id, head);
  }
  assert.equal(c.frames.filter((f) => f.op === 'event').length, 0, 'no event of the new log was sent as if it followed an old id');

  // History: an error that says so, instead of the new log's events after an old seq.
  const res = await fetch(`${h.url}/v1/events?channel=lost&after=${old[0]}`);
  assert.equal(res.status, 410);
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'EPOCH_CHANGED');
});

test('a bare integer is still a position in the current log: 0 means from the start', async (t) => {
  const h = await startInProcess({ store: { type: 'memory' } });
  t.after(() => h.close());
  const ids: string[] = [];
  for (let i = 1; i <= 3; i++) ids.push((await postJson(`${h.url}/v1/publish`, { channel: 'bare', data: i })).json.id);
  assert.match(ids[0]!, /^[0-9a-z]{6}-\d+$/);
  const es = openEventSource(`${h.url}/v1/stream?channel=bare`, ['message', 'herald.reset'], { 'last-event-id': '0' });
  t.after(() => es.close());
  await es.until(3);
  assert.deepEqual(es.messages.map((m) => m.lastEventId), ids);
  es.close();
  const page = (await (await fetch(`${h.url}/v1/events?channel=bare&after=1`)).json()) as { events: { id: string }[] };
  assert.deepEqual(page.events.map((e) => e.id), ids.slice(1));
});
