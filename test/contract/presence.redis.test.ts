import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { RedisPresenceStore } from '../../src/presence/redis-presence.js';
import { waitFor } from '../helpers/herald.js';
import { needRedis, uniquePrefix } from '../helpers/redis.js';
import { needService } from '../helpers/service.js';
import { PROPAGATION_TIMEOUT_MS, Recorder, barrier, members, onEvery, presenceContract } from './presence.contract.js';

const ROOM = 'room.1';
/** milliseconds: short, so a killed node's entries lapse within the test. */
const TEST_TTL_MS = 900;

interface RedisCluster {
  prefix: string;
  admin: Redis;
  node(): RedisPresenceStore;
  /** The node dies without a word: its client drops, its heartbeat stops being renewed. */
  kill(store: RedisPresenceStore): void;
}

/** Nodes of one deployment, each with its own client; closed, and their keys deleted, by `t.after`. */
function redisCluster(t: TestContext, url: string, opts: { patterns: readonly string[]; leaveDelayMs: number }): RedisCluster {
  const prefix = uniquePrefix('presence');
  const clients = new Map<RedisPresenceStore, Redis>();
  const client = () => {
    const redis = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    redis.on('error', () => undefined);
    return redis;
  };
  const admin = client();
  t.after(async () => {
    // quit (after the replies to what was sent) where connected, so no write lands after the
    // cleanup; then disconnect, so a client whose server went away stops reconnecting
    const end = async (redis: Redis) => {
      if (redis.status === 'ready') await redis.quit().catch(() => undefined);
      redis.disconnect();
    };
    for (const [store, redis] of clients) {
      store.close();
      await end(redis);
    }
    const keys = admin.status === 'ready' ? await admin.keys(`${prefix}*`).catch(() => []) : [];
    if (keys.length > 0) await admin.del(...keys);
    await end(admin);
  });
  let n = 0;
  return {
    prefix,
    admin,
    node() {
      const redis = client();
      const store = new RedisPresenceStore({ redis, prefix, node: `node-${++n}`, ttlMs: TEST_TTL_MS, ...opts });
      clients.set(store, redis);
      return store;
    },
    kill(store) {
      clients.get(store)!.disconnect();
    },
  };
}

presenceContract('Redis, one client per node', {
  async create(t, opts) {
    const url = await needRedis(t);
    return url ? redisCluster(t, url, opts) : undefined;
  },
});

test('the constructor refuses a node id with a separator, a TTL too short to renew and a client with its own keyPrefix', () => {
  const redis = new Redis({ lazyConnect: true });
  const base = { redis, prefix: '{p}:', node: 'n', patterns: ['room.*'], leaveDelayMs: 0 };
  assert.throws(() => new RedisPresenceStore({ ...base, node: 'a|b' }), TypeError);
  assert.throws(() => new RedisPresenceStore({ ...base, ttlMs: 0 }), TypeError);
  assert.throws(() => new RedisPresenceStore({ ...base, redis: new Redis({ lazyConnect: true, keyPrefix: 'x:' }) }), TypeError);
});

describe('RedisPresenceStore: nodes that leave', () => {
  test('a node that closes takes its members away on the other nodes and leaves no keys behind', async (t) => {
    const url = await needRedis(t);
    if (!url) return;
    const cluster = redisCluster(t, url, { patterns: ['room.*'], leaveDelayMs: 0 });
    const [a, b] = [cluster.node(), cluster.node()];
    const seen = new Recorder(a, ROOM);
    b.join(ROOM, 'u');
    b.join(ROOM, undefined);
    a.join(ROOM, 'v');
    await waitFor(() => members(a.snapshot(ROOM)).length === 2 && a.snapshot(ROOM).anonymous === 1, PROPAGATION_TIMEOUT_MS, 'u on a');
    b.close();
    b.close();
    await waitFor(() => seen.count('leave', 'u') === 1, PROPAGATION_TIMEOUT_MS, 'the leave of u');
    await barrier(a, ROOM, [seen]);
    assert.deepEqual([seen.count('join', 'u'), seen.count('leave', 'u')], [1, 1]);
    assert.deepEqual(a.snapshot(ROOM), { channel: ROOM, members: [{ identity: 'v', connections: 1 }], anonymous: 0 });
    a.close();
    // all that is left of the deployment is its announcement counter
    await waitFor(async () => (await cluster.admin.keys(`${cluster.prefix}*`)).join() === `${cluster.prefix}presence:seq`, PROPAGATION_TIMEOUT_MS, 'no presence keys');
  });

  test('a killed node: its members leave once its heartbeat lapses, on every surviving node, once', async (t) => {
    const url = await needRedis(t);
    if (!url) return;
    const cluster = redisCluster(t, url, { patterns: ['room.*'], leaveDelayMs: 0 });
    const nodes = [cluster.node(), cluster.node(), cluster.node()];
    const [a, b, c] = nodes as [RedisPresenceStore, RedisPresenceStore, RedisPresenceStore];
    const seen = [new Recorder(a, ROOM), new Recorder(b, ROOM)];
    c.join(ROOM, 'gone');
    c.join(ROOM, 'both');
    a.join(ROOM, 'both');
    c.join(ROOM, undefined);
    await onEvery(nodes, (n) => JSON.stringify(members(n.snapshot(ROOM))) === '[["both",2],["gone",1]]' && n.snapshot(ROOM).anonymous === 1, 'every member on every node');
    cluster.kill(c);
    await onEvery([a, b], (n) => JSON.stringify(members(n.snapshot(ROOM))) === '[["both",1]]' && n.snapshot(ROOM).anonymous === 0, 'the killed node reaped');
    await barrier(b, ROOM, seen);
    for (const r of seen) {
      assert.deepEqual([r.count('join', 'gone'), r.count('leave', 'gone')], [1, 1]);
      assert.deepEqual([r.count('join', 'both'), r.count('leave', 'both')], [1, 0]);
    }
    assert.deepEqual((await cluster.admin.smembers(`${cluster.prefix}presence:nodes`)).sort(), ['node-1', 'node-2']);
  });
});

describe('RedisPresenceStore: Redis away', () => {
  test('a node keeps its own connections and the members it knew while Redis is down, and writes its state again when Redis is back', async (t) => {
    if (!(await needRedis(t))) return;
    const server = await RedisServer.start(t);
    if (!server) return;
    const cluster = redisCluster(t, server.url, { patterns: ['room.*'], leaveDelayMs: 0 });
    const nodes = [cluster.node(), cluster.node()];
    const [a, b] = nodes as [RedisPresenceStore, RedisPresenceStore];
    const seen = nodes.map((n) => new Recorder(n, ROOM));
    a.join(ROOM, 'x');
    b.join(ROOM, 'z');
    await onEvery(nodes, (n) => members(n.snapshot(ROOM)).length === 2, 'x and z on both nodes');

    await server.stop();
    a.join(ROOM, 'y');
    assert.equal(seen[0]!.count('join', 'y'), 1, 'a local join is seen at once');
    assert.deepEqual(members(a.snapshot(ROOM)), [
      ['x', 1],
      ['y', 1],
      ['z', 1],
    ]);

    await server.restart(); // empty: it kept nothing
    await onEvery(nodes, (n) => members(n.snapshot(ROOM)).length === 3, 'x, y and z on both nodes');
    await barrier(a, ROOM, seen);
    for (const r of seen) for (const id of ['x', 'y', 'z']) assert.deepEqual([r.count('join', id), r.count('leave', id)], [1, 0], id);
  });
});

describe('RedisPresenceStore: announcements lost', () => {
  test('a change announced while a node was not subscribed reaches it when its subscription is back', async (t) => {
    if (!(await needRedis(t))) return;
    const server = await RedisServer.start(t); // CLIENT KILL is only for a server of the test's own
    if (!server) return;
    const cluster = redisCluster(t, server.url, { patterns: ['room.*'], leaveDelayMs: 0 });
    const nodes = [cluster.node(), cluster.node()];
    const [a, b] = nodes as [RedisPresenceStore, RedisPresenceStore];
    const seen = nodes.map((n) => new Recorder(n, ROOM));
    a.join(ROOM, 'x');
    await onEvery(nodes, (n) => members(n.snapshot(ROOM)).length === 1, 'x on both nodes');
    await cluster.admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    b.join(ROOM, 'late'); // announced while no node listens
    await waitFor(() => members(a.snapshot(ROOM)).length === 2, PROPAGATION_TIMEOUT_MS, 'late on a');
    await barrier(a, ROOM, seen);
    for (const r of seen) assert.deepEqual([r.count('join', 'late'), r.count('leave', 'late')], [1, 0]);
  });
});

/** A Redis server of this test's own, on a free loopback port, that it may stop and start. */
class RedisServer {
  #child: ChildProcess | undefined;
  readonly #port: number;

  private constructor(port: number) {
    this.#port = port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.#port}`;
  }

  static async start(t: TestContext): Promise<RedisServer | undefined> {
    const probe = spawn('redis-server', ['--version'], { stdio: 'ignore' });
    const found = await new Promise<boolean>((resolve) => {
      probe.on('error', () => resolve(false));
      probe.on('exit', (code) => resolve(code === 0));
    });
    if (!needService(t, found, 'redis-server', 'install redis-server')) return undefined;
    const srv = createServer().listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const port = (srv.address() as { port: number }).port;
    srv.close();
    const server = new RedisServer(port);
    t.after(() => server.stop());
    await server.restart();
    return server;
  }

  async restart(): Promise<void> {
    this.#child = spawn('redis-server', ['--port', String(this.#port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await waitFor(
      async () => {
        const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        probe.on('error', () => undefined);
        try {
          await probe.connect();
          return (await probe.ping()) === 'PONG';
        } catch {
          return false;
        } finally {
          probe.disconnect();
        }
      },
      PROPAGATION_TIMEOUT_MS,
      'redis-server to start',
    );
  }

  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
}
