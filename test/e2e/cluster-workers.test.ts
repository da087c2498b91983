import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { Redis } from 'ioredis';
import { after, before, describe, test, type TestContext } from 'node:test';
import { openWs } from '../helpers/clients.js';
import { seqOfId, spawnHerald, waitFor, type SpawnedHerald } from '../helpers/herald.js';
import { deletePrefix, needRedis, redisAvailable, uniquePrefix } from '../helpers/redis.js';
import { receiverPool } from '../helpers/webhook-receiver.js';

/**
 * `herald --workers 2` on the embedded SQLite default, and on Redis (each worker is then simply a
 * node of the shared log, with the Redis broker): two processes serve one port and one log.
 * Every request below opens its own TCP connection (no keep-alive agent), so the primary's
 * round-robin spreads them over both workers; `Herald-Worker` says which one answered.
 */

interface SseEvent {
  id: string;
  event: string;
  data: string;
}

/** A raw SSE client on a connection of its own, recording the worker that serves it. */
async function openSse(base: string, channel: string, lastEventId?: string) {
  const events: SseEvent[] = [];
  let ended = false;
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(`${base}/v1/stream?channel=${channel}`, {
      agent: false,
      headers: lastEventId ? { 'last-event-id': lastEventId } : {},
    });
    req.on('response', resolve).on('error', reject).end();
  });
  assert.equal(res.statusCode, 200);
  let buf = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    buf += chunk;
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const e: SseEvent = { id: '', event: 'message', data: '' };
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) e.id = line.slice(4);
        else if (line.startsWith('event: ')) e.event = line.slice(7);
        else if (line.startsWith('data: ')) e.data = line.slice(6);
      }
      if (e.id) events.push(e);
    }
  });
  res.on('close', () => (ended = true));
  res.on('error', () => (ended = true));
  return {
    worker: String(res.headers['herald-worker']),
    events,
    ids: () => events.filter((e) => e.event !== 'herald.reset').map((e) => e.id),
    resets: () => events.filter((e) => e.event === 'herald.reset'),
    get ended() {
      return ended;
    },
    close: () => res.destroy(),
  };
}
type Sse = Awaited<ReturnType<typeof openSse>>;

/**
 * One publish on a connection of its own: the event's id and the worker that appended it. A
 * connection handed to a worker at the moment it was killed is refused before any byte of the
 * request was read: it is sent again.
 */
async function publish(base: string, channel: string, data: unknown): Promise<{ id: string; worker: string }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await publishOnce(base, channel, data);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (attempt >= 3 || (code !== 'ECONNRESET' && code !== 'EPIPE')) throw err;
    }
  }
}

async function publishOnce(base: string, channel: string, data: unknown): Promise<{ id: string; worker: string }> {
  const r = await post(`${base}/v1/publish`, { channel, data });
  return { id: r.json.id as string, worker: r.worker };
}

/** A JSON POST on a connection of its own, answered 201: the body and the worker that answered. */
function post(url: string, body: unknown): Promise<{ json: Record<string, unknown>; worker: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        if (res.statusCode !== 201) return reject(new Error(`${url} answered ${res.statusCode}: ${text}`));
        resolve({ json: JSON.parse(text) as Record<string, unknown>, worker: String(res.headers['herald-worker']) });
      });
    });
    req.end(JSON.stringify(body));
  });
}

/** Publishes `n` events, three at a time, so both workers append while the other does. */
async function publishMany(base: string, channel: string, n: number): Promise<{ id: string; worker: string }[]> {
  const out: { id: string; worker: string }[] = [];
  for (let i = 0; i < n; i += 3) {
    const batch = Array.from({ length: Math.min(3, n - i) }, (_, k) => publish(base, channel, { n: i + k }));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

/** SSE streams opened until both workers serve at least one (round-robin makes that quick). */
async function sseOnBothWorkers(base: string, channel: string, lastEventId?: string): Promise<Sse[]> {
  const streams: Sse[] = [];
  for (let i = 0; i < 8 && new Set(streams.map((s) => s.worker)).size < 2; i++) {
    streams.push(await openSse(base, channel, lastEventId));
  }
  assert.deepEqual(new Set(streams.map((s) => s.worker)), new Set(['1', '2']));
  return streams;
}

const inLogOrder = (ids: string[]) => [...ids].sort((a, b) => seqOfId(a) - seqOfId(b));

/** The log the workers share: the SQLite default, or one Redis key prefix (skipped without Redis). */
const BACKENDS = [
  { name: 'SQLite', config: async (): Promise<Record<string, unknown> | undefined> => ({}) },
  {
    name: 'Redis',
    config: async (): Promise<Record<string, unknown> | undefined> => {
      const url = await redisAvailable();
      return url ? { backend: { type: 'redis', url, keyPrefix: uniquePrefix('workers').slice(1, -2) } } : undefined;
    },
  },
];

for (const backend of BACKENDS) {
  describe(`herald --workers 2 on ${backend.name}: one port, one log, every worker`, () => {
    let h: SpawnedHerald;
    let config: Record<string, unknown> | undefined;
    before(async () => {
      config = await backend.config();
      if (config) h = await spawnHerald(config, { args: ['--workers', '2'] });
    });
    after(async () => {
      if (!h) return;
      assert.equal(await h.stop(), 0);
      const redis = config?.backend as { url: string; keyPrefix: string } | undefined;
      if (redis) {
        const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
        await deletePrefix(client, `{${redis.keyPrefix}}:`).finally(() => client.disconnect());
      }
    });
    /** False after skipping a Redis test without Redis (failing it in CI). */
    const have = async (t: TestContext) => backend.name !== 'Redis' || (await needRedis(t)) !== undefined;

    test('SSE and WebSocket subscribers on either worker get every event, in the same order with the same ids', async (t) => {
      if (!(await have(t))) return;
      const sse = await sseOnBothWorkers(h.url, 'fan');
      const ws = await Promise.all([1, 2, 3, 4].map(() => openWs(`${h.url.replace('http', 'ws')}/v1/ws`)));
      t.after(() => {
        for (const s of sse) s.close();
        for (const c of ws) c.close();
      });
      for (const c of ws) c.send({ op: 'subscribe', channel: 'fan', ref: 's' });
      await Promise.all(ws.map((c) => c.next((f) => f.op === 'ack')));

      const published = await publishMany(h.url, 'fan', 30);
      assert.deepEqual(new Set(published.map((p) => p.worker)), new Set(['1', '2']));
      const want = inLogOrder(published.map((p) => p.id));
      assert.equal(new Set(want).size, 30, 'ids are unique across workers');

      for (const s of sse) await waitFor(() => s.ids().length >= 30, 10_000, `30 events on SSE (worker ${s.worker})`);
      for (const c of ws) await waitFor(() => c.events().length >= 30, 10_000, '30 events on a WebSocket');
      for (const s of sse) assert.deepEqual(s.ids(), want);
      for (const c of ws) assert.deepEqual(c.events().map((f) => f.id as string), want);
    });

    test('a resume with Last-Event-ID lands on either worker: no gap, no duplicate, no reset', async (t) => {
      if (!(await have(t))) return;
      const published = await publishMany(h.url, 'resume', 12);
      const ids = inLogOrder(published.map((p) => p.id));
      const resumed = await sseOnBothWorkers(h.url, 'resume', ids[3]);
      // The newest id, which one worker appended, taken back to both: nothing to replay, no reset.
      const atHead = await sseOnBothWorkers(h.url, 'resume', ids[11]);
      t.after(() => {
        for (const s of [...resumed, ...atHead]) s.close();
      });
      for (const s of resumed) await waitFor(() => s.ids().length >= 8, 10_000, `the replay on worker ${s.worker}`);
      const more = await publish(h.url, 'resume', 'after the resume');
      for (const s of [...resumed, ...atHead]) await waitFor(() => s.ids().includes(more.id), 10_000, 'the live event');
      for (const s of resumed) {
        assert.deepEqual(s.resets(), []);
        assert.deepEqual(s.ids(), [...ids.slice(4), more.id]);
      }
      for (const s of atHead) {
        assert.deepEqual(s.resets(), [], `worker ${s.worker} knew the head another worker appended`);
        assert.deepEqual(s.ids(), [more.id]);
      }
    });

    test('a worker killed with SIGKILL is replaced, and its clients resume without a gap', async (t) => {
      if (!(await have(t))) return;
      const sse = await sseOnBothWorkers(h.url, 'kill');
      t.after(() => {
        for (const s of sse) s.close();
      });
      const before = inLogOrder((await publishMany(h.url, 'kill', 6)).map((p) => p.id));
      for (const s of sse) await waitFor(() => s.ids().length >= 6, 10_000, 'the first events');

      const victim = sse[0]!.worker;
      const started = h.logs.find((l) => l.msg === 'worker listening' && String(l.worker) === victim);
      const replacements = () => h.logs.filter((l) => l.msg === 'worker listening (a replacement)').length;
      const replaced = replacements();
      process.kill(started!.pid as number, 'SIGKILL');
      const cut = sse.filter((s) => s.worker === victim);
      for (const s of cut) await waitFor(() => s.ended, 5_000, 'the killed worker to drop its streams');
      // Meanwhile the surviving worker takes every publish.
      const during = inLogOrder((await publishMany(h.url, 'kill', 6)).map((p) => p.id));
      await waitFor(() => replacements() > replaced, 10_000, 'the replacement worker');
      assert.ok(h.logs.some((l) => l.msg === 'worker died; starting a replacement'));

      const resumed = await Promise.all(cut.map((s) => openSse(h.url, 'kill', s.ids().at(-1))));
      t.after(() => {
        for (const s of resumed) s.close();
      });
      const afterIds = inLogOrder((await publishMany(h.url, 'kill', 6)).map((p) => p.id));
      const all = [...before, ...during, ...afterIds];
      for (const [i, s] of resumed.entries()) {
        const had = cut[i]!.ids();
        await waitFor(() => s.ids().length >= all.length - had.length, 10_000, 'the resumed stream to catch up');
        assert.deepEqual(s.resets(), []);
        assert.deepEqual([...had, ...s.ids()], all);
      }
      for (const s of sse.filter((x) => x.worker !== victim)) {
        await waitFor(() => s.ids().length >= all.length, 10_000, 'the surviving stream');
        assert.deepEqual(s.ids(), all);
      }
    });
  });
}

describe('herald --workers 2: outbound webhooks', () => {
  const receiver = receiverPool();

  test('each event is sent once per endpoint, whichever worker created the endpoint or took the publish', async (t) => {
    const h = await spawnHerald(
      { outbound: { allowPrivateTargets: true, retryScheduleSeconds: [0, 0.1], retryJitter: 0, sweepIntervalSeconds: 0.05 } },
      { args: ['--workers', '2'] },
    );
    t.after(() => h.stop());
    const rx = await receiver();
    // One endpoint made through each worker: one of them is not the worker that plans.
    const endpoints: { id: string; worker: string }[] = [];
    for (let i = 0; i < 8 && new Set(endpoints.map((e) => e.worker)).size < 2; i++) {
      const r = await post(`${h.url}/v1/endpoints`, { url: `${rx.url}/ep${i}`, channels: ['out.>'] });
      endpoints.push({ id: r.json.id as string, worker: r.worker });
    }
    assert.deepEqual(new Set(endpoints.map((e) => e.worker)), new Set(['1', '2']));
    const published = await publishMany(h.url, 'out.orders', 20);
    assert.deepEqual(new Set(published.map((p) => p.worker)), new Set(['1', '2']));

    const want = published.length * endpoints.length;
    await waitFor(() => rx.requests.length >= want, 15_000, `${want} deliveries (have ${rx.requests.length})`);
    // Every delivery is recorded as delivered (outcomes are written in batches, just after the
    // answer): none is still owed, so none is sent again.
    for (const e of endpoints) {
      await waitFor(
        async () => {
          const res = await fetch(`${h.url}/v1/endpoints/${e.id}/deliveries?status=delivered&limit=100`);
          const text = await res.text();
          assert.equal(res.status, 200, text);
          return (JSON.parse(text) as { deliveries: unknown[] }).deliveries.length === published.length;
        },
        10_000,
        'every delivery recorded as delivered',
      );
    }
    assert.equal(rx.requests.length, want);
    assert.deepEqual(rx.overlaps, []);
    const ids = new Set(rx.requests.map((r) => String(r.headers['webhook-id'])));
    assert.equal(ids.size, published.length, 'one webhook-id per event, shared by its endpoints');
  });
});
