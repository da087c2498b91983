/**
 * How long one resume holds the event loop, and how long it takes, at several log sizes.
 *
 *   npm run build && node dist/bench/replay-stall.js [25000 50000 100000]
 *
 * For each size: a SQLite log of that many events on `orders.<n>` channels, then in one Herald in
 * this process: an SSE resume of `orders.>` from position 0, four such resumes at once, and one
 * `GET /v1/events` with 100 leading-wildcard patterns. Prints, per scenario, the longest stall of
 * the event loop (the longest gap between ticks of a 5 ms interval) and the wall time. Not a test: figures depend
 * on the machine and its load.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHerald } from '../src/app.js';
import { buildConfig } from '../src/config/load.js';
import { createLogger } from '../src/observability/logger.js';
import { SqliteEventStore } from '../src/stores/sqlite-event-store.js';

const BATCH = 5_000;

async function buildLog(file: string, events: number): Promise<void> {
  const store = new SqliteEventStore({ file, synchronous: 'normal', backgroundCheckpoints: false });
  for (let i = 0; i < events; i += BATCH) {
    const n = Math.min(BATCH, events - i);
    await store.append(
      Array.from({ length: n }, (_, j) => ({ channel: `orders.${(i + j) % 10}`, type: 'order', data: `{"n":${i + j}}` })),
    );
  }
  await store.close();
}

/** Reads an SSE resume until `count` events have arrived. */
async function resume(url: string, count: number): Promise<void> {
  const res = await fetch(`${url}/v1/stream?channel=orders.%3E`, { headers: { 'last-event-id': '0' } });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let seen = 0;
  let tail = '';
  while (seen < count) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended after ${seen} events`);
    const text = tail + decoder.decode(value, { stream: true });
    const lines = text.split('\n');
    tail = lines.pop()!;
    for (const l of lines) if (l.startsWith('id:')) seen++;
  }
  await reader.cancel();
}

/**
 * The longest gap between two ticks of a 5 ms interval, less the 5 ms: how long the loop was held.
 * `stop` waits for one more tick, so a stall that lasts until the end is counted too.
 */
function stallMeter(): { stop(): Promise<number> } {
  let last = performance.now();
  let max = 0;
  const tick = () => {
    const now = performance.now();
    max = Math.max(max, now - last - 5);
    last = now;
  };
  const timer = setInterval(tick, 5);
  return {
    stop: () =>
      new Promise((resolve) =>
        setTimeout(() => {
          tick();
          clearInterval(timer);
          resolve(max);
        }, 0),
      ),
  };
}

async function measure(name: string, size: number, run: () => Promise<unknown>): Promise<void> {
  const stall = stallMeter();
  const t0 = performance.now();
  await run();
  const ms = performance.now() - t0;
  const maxStallMs = await stall.stop();
  console.log(JSON.stringify({ scenario: name, events: size, maxStallMs: Math.round(maxStallMs), totalMs: Math.round(ms) }));
}

const sizes = process.argv.slice(2).map(Number);
for (const size of sizes.length > 0 ? sizes : [25_000, 50_000, 100_000]) {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-replay-bench-'));
  await buildLog(join(dataDir, 'herald.db'), size);
  const config = buildConfig(
    { log: { level: 'silent' }, store: { sqlite: { synchronous: 'normal' } } },
    { PORT: '0', HOST: '127.0.0.1', HERALD_DATA_DIR: dataDir },
  );
  const herald = createHerald(config, createLogger('silent'));
  const url = await herald.listen();
  await measure('sse-resume-orders.>', size, () => resume(url, size));
  await measure('4-sse-resumes-at-once', size, () => Promise.all([1, 2, 3, 4].map(() => resume(url, size))));
  const q = Array.from({ length: 100 }, (_, i) => `channel=*.${i}x`).join('&');
  await measure('v1-events-100-leading-wildcards', size, async () => {
    const r = await fetch(`${url}/v1/events?${q}&limit=1000`);
    await r.arrayBuffer();
  });
  await herald.close();
}
