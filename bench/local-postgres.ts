import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
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

  /**
   * CPU milliseconds the server has used: the postmaster, its live processes (backends, WAL
   * writer, checkpointer...) and those that exited. Linux only (/proc).
   */
  cpuMs(): number {
    // scripts/services/postgres.sh keeps the cluster in $TMPDIR/herald-postgres.<port>/data.
    const pidFile = join(process.env.TMPDIR ?? tmpdir(), `herald-postgres.${this.#port}`, 'data', 'postmaster.pid');
    const postmaster = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    let ms = procStat(postmaster, true)?.cpuMs ?? 0;
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const st = procStat(Number(name), false);
      if (st?.ppid === postmaster) ms += st.cpuMs;
    }
    return ms;
  }

  async stop(): Promise<void> {
    await run('bash', [script(), 'stop'], { env: { ...process.env, HERALD_POSTGRES_PORT: String(this.#port) } }).catch(() => undefined);
  }
}

const USER_HZ = 100;

/** A process's parent and CPU milliseconds (with its waited-for children's when `children`); undefined once it is gone. */
function procStat(pid: number, children: boolean): { ppid: number; cpuMs: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0);
  return { ppid: Number(f[1]), cpuMs: (ticks * 1000) / USER_HZ };
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
