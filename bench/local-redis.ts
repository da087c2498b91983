import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { cpuMsOf } from './bench-targets.js';
import { freePort } from './peers.js';

/** How a benchmark's own Redis persists: not at all, or AOF with one of its fsync policies. */
export type Aof = 'off' | 'everysec' | 'always';

/** milliseconds a local Redis may take to answer PING. */
const REDIS_START_TIMEOUT_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/** A redis-server of this run only, on a free loopback port; `aof` says how it persists. */
export class LocalRedis {
  readonly url: string;
  readonly child: ChildProcess;
  readonly #dir: string;

  private constructor(url: string, child: ChildProcess, dir: string) {
    this.url = url;
    this.child = child;
    this.#dir = dir;
  }

  static async start(aof: Aof): Promise<LocalRedis> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'herald-bench-redis-'));
    const persist = aof === 'off' ? ['--appendonly', 'no'] : ['--appendonly', 'yes', '--appendfsync', aof];
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, '--maxmemory-policy', 'noeviction', ...persist], {
      stdio: 'ignore',
    });
    const url = `redis://127.0.0.1:${port}`;
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined); // refused until the server listens: retried below
    const deadline = Date.now() + REDIS_START_TIMEOUT_MS;
    for (;;) {
      try {
        await client.connect();
        await client.ping();
        break;
      } catch (err) {
        if (Date.now() > deadline) {
          child.kill('SIGKILL');
          throw new Error(`redis-server did not answer on ${url}: ${(err as Error).message}`);
        }
        client.disconnect();
        await sleep(100);
      }
    }
    client.disconnect();
    return new LocalRedis(url, child, dir);
  }

  cpuMs(): number {
    return cpuMsOf(this.child.pid!);
  }

  async stop(): Promise<void> {
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
