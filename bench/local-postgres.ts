import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../src/http/routes/pages.js';

const run = promisify(execFile);

/**
 * A throwaway PostgreSQL for one benchmark run: the repo's own service script
 * (scripts/services/postgres.sh: initdb and pg_ctl, loopback only, fsync on) on a free port of
 * its own, stopped and removed afterwards.
 */
export class LocalPostgres {
  readonly url: string;
  readonly #port: number;

  private constructor(url: string, port: number) {
    this.url = url;
    this.#port = port;
  }

  static async start(): Promise<LocalPostgres> {
    const port = await freePort();
    const { stdout } = await run('bash', [script(), 'start'], { env: { ...process.env, HERALD_POSTGRES_PORT: String(port) } });
    return new LocalPostgres(stdout.trim().split('\n').at(-1)!, port);
  }

  async stop(): Promise<void> {
    await run('bash', [script(), 'stop'], { env: { ...process.env, HERALD_POSTGRES_PORT: String(this.#port) } }).catch(() => undefined);
  }
}

function script(): string {
  return join(packageRoot(), 'scripts/services/postgres.sh');
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
