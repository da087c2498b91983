import assert from 'node:assert/strict';
import { waitFor } from '../helpers/herald.js';

/** Group timings the single test broker accepts (its minimum session is 6 s) and tests like. */
export const FAST_GROUP = { sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500, lagIntervalSeconds: 0.2, fetchMaxWaitMs: 100 };

export interface LoggedEvent {
  id: string;
  channel: string;
  type: string;
  data: any;
}

/** Every event of `pattern` in the log, oldest first, read page by page over the history API. */
export async function readLog(url: string, pattern: string, after = '0', out: LoggedEvent[] = []): Promise<LoggedEvent[]> {
  for (;;) {
    const res = await fetch(`${url}/v1/events?channel=${encodeURIComponent(pattern)}&after=${after}&limit=1000`);
    assert.equal(res.status, 200);
    const page = ((await res.json()) as { events: LoggedEvent[] }).events;
    out.push(...page);
    if (page.length < 1000) return out;
    after = page[page.length - 1]!.id;
  }
}

/** The value of one Prometheus sample (summed over label sets matching `labels`), 0 when absent. */
export async function metric(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * Checks the Kafka events of a test run: every `n` from 0 to `total - 1` exactly once, and each
 * key's records in the order they were produced (one key, one partition, one offset order).
 */
export function assertExactlyOnceInOrder(events: LoggedEvent[], total: number): void {
  const seen = new Map<number, number>();
  for (const e of events) seen.set(e.data.n as number, (seen.get(e.data.n as number) ?? 0) + 1);
  const missing: number[] = [];
  const repeated: number[] = [];
  for (let n = 0; n < total; n++) {
    const c = seen.get(n) ?? 0;
    if (c === 0) missing.push(n);
    if (c > 1) repeated.push(n);
  }
  assert.deepEqual({ missing: missing.slice(0, 10), repeated: repeated.slice(0, 10) }, { missing: [], repeated: [] });
  assert.equal(events.length, total);
  const lastByKey = new Map<string, number>();
  for (const e of events) {
    const prev = lastByKey.get(e.data.key as string) ?? -1;
    assert.ok((e.data.n as number) > prev, `key ${e.data.key}: ${e.data.n} came after ${prev}`);
    lastByKey.set(e.data.key as string, e.data.n as number);
  }
}

/** Waits until the log holds `total` events of `pattern`, reading only what is new each time. */
export async function waitForLog(url: string, pattern: string, total: number, ms: number): Promise<LoggedEvent[]> {
  const events: LoggedEvent[] = [];
  await waitFor(
    async () => {
      await readLog(url, pattern, events.at(-1)?.id ?? '0', events);
      return events.length >= total;
    },
    ms,
    `${total} events in the log`,
  );
  return events;
}
