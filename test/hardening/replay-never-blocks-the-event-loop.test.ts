import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SqliteEventStore } from '../../src/stores/sqlite-event-store.js';
import { EventSource } from 'eventsource';
import { openWs } from '../helpers/clients.js';
import { postJson, seqOfId, startInProcess, waitFor } from '../helpers/herald.js';

/** Events in the log every resume here reads from position 0. */
const LOG_EVENTS = 100_000;
/**
 * milliseconds: the longest the event loop may be held while replays run. Before replays were
 * sliced, one `orders.>` resume over this log held it 5-8 s, a wide `/v1/events` read 5 s; sliced,
 * 15-75 ms here. The bound leaves a loaded machine (GC, other processes) a wide margin.
 */
const STALL_BOUND_MS = 500;
/** milliseconds a test waits for a whole replay to arrive: far beyond what it needs. */
const REPLAY_WAIT_MS = 90_000;

/** A SQLite log of LOG_EVENTS events on `orders.0`..`orders.9`, the last one also on `zz.7x`. */
async function buildLog(dataDir: string): Promise<void> {
  const store = new SqliteEventStore({ file: join(dataDir, 'herald.db'), synchronous: 'normal', backgroundCheckpoints: false });
  for (let i = 0; i < LOG_EVENTS; i += 5_000) {
    await store.append(
      Array.from({ length: 5_000 }, (_, j) => {
        const n = i + j;
        return { channel: n === LOG_EVENTS - 1 ? 'zz.7x' : `orders.${n % 10}`, type: 'order', data: `{"n":${n}}` };
      }),
    );
  }
  await store.close();
}

/** The longest gap between ticks of a 5 ms interval, beyond the 5 ms. */
function stallMeter() {
  let last = performance.now();
  let max = 0;
  const tick = () => {
    const now = performance.now();
    max = Math.max(max, now - last - 5);
    last = now;
  };
  const timer = setInterval(tick, 5);
  return {
    /** Waits for one more tick, so a stall lasting until now is counted, and stops. */
    stop: () =>
      new Promise<number>((resolve) =>
        setTimeout(() => {
          tick();
          clearInterval(timer);
          resolve(max);
        }, 0),
      ),
  };
}

/**
 * An `eventsource` client resuming `orders.>` from 0 that checks each id as it comes (the next
 * expected one, so no gap, no duplicate, in order) instead of keeping 100,000 messages, whose
 * garbage collection would be measured as a stall of the server.
 */
function resumeFromZero(url: string, expected: (n: number) => string) {
  let count = 0;
  let wrong: string | undefined;
  const source = new EventSource(`${url}/v1/stream?channel=orders.%3E`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), 'last-event-id': '0' } }),
  });
  source.addEventListener('order', (e) => {
    const want = expected(count++);
    if (wrong === undefined && String(seqOfId(e.lastEventId)) !== want) wrong = `event ${count}: id ${e.lastEventId}, expected ${want}`;
  });
  return {
    get count() {
      return count;
    },
    get wrong() {
      return wrong;
    },
    until: (n: number) => waitFor(() => count >= n, REPLAY_WAIT_MS, `${n} events (have ${count})`),
    close: () => source.close(),
  };
}

describe('a replay over a long log never blocks the event loop', () => {
  let h: Awaited<ReturnType<typeof startInProcess>>;
  // Events on orders.* in the log: every position but the last.
  const inLog = LOG_EVENTS - 1;
  // The i-th orders.* event: the log (positions 1..inLog), then the three the first test publishes.
  const nth = (i: number) => String(i < inLog ? i + 1 : i + 2);

  before(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'herald-replay-'));
    await buildLog(dataDir);
    h = await startInProcess({ store: { sqlite: { synchronous: 'normal' } } }, { dataDir });
  });
  after(() => h.close());

  test('an SSE resume of orders.> from 0, with publishes during it: all once, in order, no stall', async () => {
    const stall = stallMeter();
    const sse = resumeFromZero(h.url, nth);
    try {
      // Publish while the replay is under way: they must come after it, once each.
      await waitFor(() => sse.count > 0, REPLAY_WAIT_MS, 'the replay to start');
      for (let i = 0; i < 3; i++) {
        const r = await postJson(`${h.url}/v1/publish`, { channel: 'orders.live', type: 'order', data: { live: i } });
        assert.equal(r.status, 201);
      }
      await sse.until(inLog + 3);
      const maxStall = await stall.stop();
      assert.equal(sse.wrong, undefined);
      assert.equal(sse.count, inLog + 3);
      assert.ok(maxStall < STALL_BOUND_MS, `the event loop was held ${Math.round(maxStall)} ms`);
    } finally {
      sse.close();
    }
  });

  test('a WebSocket subscribe with since "0": every event once, in order, no stall', async () => {
    const ws = await openWs(`${h.url.replace('http', 'ws')}/v1/ws`);
    const stall = stallMeter();
    try {
      ws.send({ op: 'subscribe', channel: 'orders.>', since: '0', ref: 1 });
      await waitFor(() => ws.events().length >= inLog, REPLAY_WAIT_MS, 'the WebSocket replay');
      const maxStall = await stall.stop();
      const got = ws.events().map((f) => String(seqOfId(String(f.id))));
      for (let i = 0; i < inLog; i++) if (got[i] !== nth(i)) assert.fail(`event ${i}: id ${got[i]}, expected ${nth(i)}`);
      assert.ok(maxStall < STALL_BOUND_MS, `the event loop was held ${Math.round(maxStall)} ms`);
    } finally {
      ws.close();
    }
  });

  test('four resumes at once: each gets the whole log, and no stall', async () => {
    const stall = stallMeter();
    const streams = [1, 2, 3, 4].map(() => resumeFromZero(h.url, nth));
    try {
      await Promise.all(streams.map((s) => s.until(inLog)));
      const maxStall = await stall.stop();
      for (const s of streams) assert.equal(s.wrong, undefined);
      assert.ok(maxStall < STALL_BOUND_MS, `the event loop was held ${Math.round(maxStall)} ms`);
    } finally {
      for (const s of streams) s.close();
    }
  });

  test('GET /v1/events with 100 leading-wildcard patterns scans the log in slices and finds the match', async () => {
    const query = Array.from({ length: 100 }, (_, i) => `channel=${encodeURIComponent(`*.${i}x`)}`).join('&');
    const stall = stallMeter();
    const res = await fetch(`${h.url}/v1/events?${query}&limit=1000`);
    const maxStall = await stall.stop();
    assert.equal(res.status, 200);
    const body = (await res.json()) as { events: { id: string; channel: string }[] };
    assert.deepEqual(body.events.map((e) => [seqOfId(e.id), e.channel]), [[LOG_EVENTS, 'zz.7x']]);
    assert.ok(maxStall < STALL_BOUND_MS, `the event loop was held ${Math.round(maxStall)} ms`);
  });
});
