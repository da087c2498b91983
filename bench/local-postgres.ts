import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../src/http/routes/pages.js';
import { procStat } from './bench-targets.js';
import { freePort } from './peers.js';

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
    let ms = statOf(postmaster, true)?.cpuMs ?? 0;
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const st = statOf(Number(name), false);
      if (st?.ppid === postmaster) ms += st.cpuMs;
    }
    return ms;
  }

  async stop(): Promise<void> {
    await run('bash', [script(), 'stop'], { env: { ...process.env, HERALD_POSTGRES_PORT: String(this.#port) } }).catch(() => undefined);
  }
}

/** A live process's parent and CPU milliseconds; undefined once it is gone. */
function statOf(pid: number, children: boolean): { ppid: number; cpuMs: number } | undefined {
  try {
    return procStat(readFileSync(`/proc/${pid}/stat`, 'utf8'), children);
  } catch {
    return undefined;
  }
}

function script(): string {
  return join(packageRoot(), 'scripts/services/postgres.sh');
}

