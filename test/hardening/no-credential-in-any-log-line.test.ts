import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import { spawnHerald, waitFor } from '../helpers/herald.js';

const SECRET = 'sEcReT-0123456789abcdef';

test('a body nested 20,000 deep is a 400 JSON_TOO_DEEP, logged nowhere with the ?token= of its URL', async () => {
  const h = await spawnHerald({ store: { type: 'memory' } });
  try {
    const deep = '['.repeat(20_000) + ']'.repeat(20_000);
    for (const [path, body] of [
      [`/v1/publish?token=${SECRET}`, `{"channel":"x","data":${deep}}`],
      [`/v1/publish?token=${SECRET}`, deep],
      [`/webhook?api_key=${SECRET}`, `{"event":"e","data":${deep}}`],
    ] as const) {
      const res = await fetch(h.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      assert.equal(res.status, 400, path);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'JSON_TOO_DEEP');
    }
    // a request after them is answered, so every line about them has been written
    assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
    const stop = h.stop();
    assert.equal(await stop, 0);
    await waitFor(() => h.logs.some((l) => l.msg === 'stopped'), 5_000, 'the last log line');
    const text = h.logs.map((l) => JSON.stringify(l)).join('\n');
    assert.ok(!text.includes(SECRET), 'a credential reached the log');
    assert.ok(!h.logs.some((l) => typeof l.level === 'number' && l.level >= 50), 'an error was logged for a client mistake');
  } finally {
    if (h.child.exitCode === null) await h.kill();
  }
});

test('the logger cuts credentials out of URLs, requests, errors and messages', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const log = createLogger('info', sink);
  const q = `token=${SECRET}&key=${SECRET}&api_key=${SECRET}&signature=${SECRET}&sig=${SECRET}`;
  log.error({ url: `/v1/stream?channel=a&${q}`, method: 'GET' }, 'request failed');
  log.error({ req: { method: 'GET', url: `/sse?${q}`, headers: {} } }, 'request errored');
  log.error({ err: new Error(`Reply was already sent, did you forget to "return reply" in "/v1/stream?${q}" (GET)?`) }, 'boom');
  log.warn(`Route GET:/v1/events?${q} not found`);
  log.info({ headers: { authorization: `Bearer ${SECRET}` } }, 'headers');
  assert.equal(lines.length, 5);
  for (const line of lines) assert.ok(!line.includes(SECRET), line);
  assert.match(lines[0]!, /channel=a&token=\[redacted\]/); // what is not a credential stays readable
});
