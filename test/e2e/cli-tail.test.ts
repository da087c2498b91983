import assert from 'node:assert/strict';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { runCli, startCli } from '../helpers/cli.js';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';

const KEY = 'cli-tail-test-key-0123456789';
const READER_KEY = 'cli-tail-reader-key-0123456789';

let h: Awaited<ReturnType<typeof startInProcess>>;
before(async () => {
  h = await startInProcess({
    auth: {
      apiKeys: [
        { key: KEY, scopes: ['admin'] },
        { key: READER_KEY, scopes: ['subscribe:news.>'] },
      ],
    },
    // Reconnects after a drop come 100 ms later (the stream's `retry:` hint), not 3 s.
    sse: { retryMs: 100 },
  });
});
after(() => h.close());

async function publish(channel: string, data: unknown): Promise<string> {
  const r = await postJson(`${h.url}/v1/publish`, { channel, data, type: 'tick' }, { authorization: `Bearer ${KEY}` });
  assert.equal(r.status, 201, r.text);
  return r.json.id as string;
}

/** A TCP proxy in front of Herald that can cut every connection and refuse new ones: a network drop. */
async function startProxy(target: string) {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let down = false;
  let refused = 0;
  const server: Server = createServer((client) => {
    if (down) {
      refused++;
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: hostname, port: Number(port) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get refused() {
      return refused;
    },
    /** Resets every open connection and refuses new ones until `up()`. */
    cut() {
      down = true;
      for (const s of sockets) s.resetAndDestroy();
    },
    up() {
      down = false;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

test('tail prints every event once, in log order, across dropped connections, and stops on SIGINT with where to resume', async () => {
  const proxy = await startProxy(h.url);
  const published: string[] = [];
  for (let i = 0; i < 5; i++) published.push(await publish('orders.eu', { n: i }));
  const tail = startCli(['tail', 'orders.>', '--since', '0', '--json', '--url', proxy.url, '--key', KEY]);
  try {
    const ids = () => tail.lines.map((l) => (JSON.parse(l) as { id: string }).id);
    await waitFor(() => tail.lines.length === 5, 10_000, 'the replay of the first five');

    // Two drops: events published while Herald cannot be reached arrive after the reconnect.
    for (let round = 1; round <= 2; round++) {
      proxy.cut();
      const refusedBefore = proxy.refused;
      for (let i = 0; i < 5; i++) published.push(await publish(i % 2 ? 'orders.eu' : 'orders.us', { round, n: i }));
      await waitFor(() => proxy.refused > refusedBefore, 10_000, 'a reconnect attempt while the network is down');
      proxy.up();
      await waitFor(() => tail.lines.length === published.length, 10_000, `the events of drop ${round}`);
    }
    published.push(await publish('orders.eu', { last: true }));
    await waitFor(() => tail.lines.length === published.length, 10_000, 'a live event after the drops');
    assert.deepEqual(ids(), published, 'every event once, in log order');
    const last = JSON.parse(tail.lines.at(-1)!) as { id: string; type: string; data: unknown };
    assert.deepEqual(last, { id: published.at(-1), type: 'tick', data: { last: true } });
    assert.match(tail.stderr(), new RegExp(`resumed after ${published[4]}`));

    tail.child.kill('SIGINT');
    const end = await tail.exited;
    assert.equal(end.code, 0, end.stderr);
    assert.match(end.stderr, new RegExp(`stopped after ${published.at(-1)} \\(resume with --since ${published.at(-1)}\\)`));

    // Resuming where it stopped gives the next event and nothing before it.
    const next = await publish('orders.us', 'after the stop');
    const resumed = await runCli(['tail', 'orders.>', '--since', published.at(-1)!, '--count', '1', '--url', h.url, '--key', KEY]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(resumed.stdout, `${next} tick "after the stop"\n`);
  } finally {
    tail.child.kill('SIGKILL');
    await proxy.close();
  }
});

test('tail reports a resume position that is gone, and continues with new events', async () => {
  const tail = startCli(['tail', 'gone.x', '--since', 'zzzzzz-3', '--url', h.url, '--key', KEY]);
  try {
    await waitFor(() => /position gone/.test(tail.stderr()), 10_000, 'the reset notice');
    const id = await publish('gone.x', [1, 2]);
    await waitFor(() => tail.lines.length === 1, 10_000, 'the live event');
    assert.equal(tail.lines[0], `${id} tick [1,2]`);
  } finally {
    tail.child.kill('SIGINT');
    assert.equal((await tail.exited).code, 0);
  }
});

test('tail on channels the key may not read is refused with the code, exit 1; without Herald, exit 3', async () => {
  const forbidden = await runCli(['tail', 'orders.>', '--url', h.url, '--key', READER_KEY]);
  assert.equal(forbidden.code, 1);
  assert.match(forbidden.stderr, /^herald tail: SUBSCRIBE_FORBIDDEN: .+ \(HTTP 403\)$/m);
  const closed = await startInProcess({});
  await closed.close();
  const gone = await runCli(['tail', 'news.x', '--url', closed.url]);
  assert.equal(gone.code, 3);
  assert.match(gone.stderr, /cannot reach Herald/);
});
