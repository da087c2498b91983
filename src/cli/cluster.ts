import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { isHeadMoved } from '../brokers/ipc-broker.js';
import type { Logger } from '../observability/logger.js';

/**
 * `herald --workers N`: the primary process forks N workers that share the port (node:cluster;
 * on Linux the primary accepts connections and hands them out round-robin, so they spread
 * evenly), relays the wake-ups of the workers' IpcBroker, replaces a worker that dies, and
 * stops them all on SIGTERM or SIGINT. It serves no request and opens no database itself.
 */

/** milliseconds before the first restart of a worker that died; doubled per restart in a row. */
export const RESTART_BACKOFF_MS = 100;
/** milliseconds: the longest wait between a worker's death and its replacement. */
export const RESTART_BACKOFF_MAX_MS = 5_000;
/** Restarts allowed within RESTART_WINDOW_MS; past it the primary gives up and stops all. */
export const RESTART_MAX = 10;
/** milliseconds over which RESTART_MAX is counted: a crash loop, not a rare crash, stops Herald. */
export const RESTART_WINDOW_MS = 60_000;
/** milliseconds the primary waits past `shutdownTimeoutSeconds` before it kills what is left. */
export const STOP_GRACE_MS = 2_000;

/** A message a worker sends once it listens. */
export interface WorkerListening {
  readonly type: 'herald.listening';
  readonly url: string;
}

function isListening(m: unknown): m is WorkerListening {
  const o = m as WorkerListening | null;
  return typeof o === 'object' && o !== null && o.type === 'herald.listening' && typeof o.url === 'string';
}

/** The number of workers `cluster.workers` asks for: `auto` is one per core. */
export function workerCount(workers: number | 'auto'): number {
  return workers === 'auto' ? availableParallelism() : workers;
}

export interface PrimaryOptions {
  readonly workers: number;
  readonly log: Logger;
  /** seconds: the workers' graceful shutdown (`shutdownTimeoutSeconds`). */
  readonly shutdownTimeoutSeconds: number;
  /** Called once every worker is gone, with the exit code for the primary. */
  readonly onExit: (code: number) => void;
}

/** Runs the primary: forks, relays, restarts, stops. */
export function runPrimary(opts: PrimaryOptions): void {
  const { log } = opts;
  const restarts: number[] = [];
  let stopping = false;
  let failed = false;
  let announced = false;
  let backoffMs = RESTART_BACKOFF_MS;
  const pendingRestarts = new Set<NodeJS.Timeout>();
  const listening = new Set<number>();

  const fork = (): void => {
    const w = cluster.fork();
    w.on('message', (m: unknown) => onMessage(w, m));
  };

  const onMessage = (from: Worker, m: unknown): void => {
    if (isHeadMoved(m)) {
      // A wake-up: the other workers read the log from where they are (see IpcBroker).
      for (const w of Object.values(cluster.workers ?? {})) {
        if (w && w !== from && w.isConnected()) w.send(m, undefined, ignoreSendError);
      }
    } else if (isListening(m)) {
      listening.add(from.id);
      const pid = from.process.pid;
      if (announced) {
        log.info({ worker: from.id, pid }, 'worker listening (a replacement)');
        backoffMs = RESTART_BACKOFF_MS;
      } else if (listening.size === opts.workers) {
        announced = true;
        // The line tools and tests wait for, as from a single process.
        log.info({ url: m.url, workers: opts.workers, pid: process.pid }, 'herald listening');
      }
    }
  };

  cluster.on('exit', (w, code, signal) => {
    listening.delete(w.id);
    const alive = Object.values(cluster.workers ?? {}).filter((x) => x && x !== w && !x.isDead()).length;
    if (stopping) {
      if (code !== 0) failed = true;
      if (alive === 0) opts.onExit(failed ? 1 : 0);
      return;
    }
    if (!announced) {
      // Not every worker ever listened: a start-up problem (its line is on stderr), which a
      // replacement would meet again.
      log.error({ worker: w.id, pid: w.process.pid, code, signal }, 'a worker failed to start; stopping Herald');
      failed = true;
      stop('start-up failure');
      return;
    }
    log.error({ worker: w.id, pid: w.process.pid, code, signal }, 'worker died; starting a replacement');
    const now = Date.now();
    while (restarts.length > 0 && restarts[0]! < now - RESTART_WINDOW_MS) restarts.shift();
    if (restarts.length >= RESTART_MAX) {
      log.error({ restarts: restarts.length, windowMs: RESTART_WINDOW_MS }, 'workers keep dying; stopping Herald');
      failed = true;
      stop('restart limit');
      return;
    }
    restarts.push(now);
    const timer = setTimeout(() => {
      pendingRestarts.delete(timer);
      if (!stopping) fork();
    }, backoffMs);
    pendingRestarts.add(timer);
    backoffMs = Math.min(backoffMs * 2, RESTART_BACKOFF_MAX_MS);
  });

  const stop = (reason: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, 'shutting down all workers');
    for (const t of pendingRestarts) clearTimeout(t);
    pendingRestarts.clear();
    // Each worker runs its own graceful shutdown (the same path as a single process).
    const alive = Object.values(cluster.workers ?? {}).filter((w) => w && !w.isDead());
    for (const w of alive) w!.process.kill('SIGTERM');
    // None left to wait for (they died, their replacements were not forked yet).
    if (alive.length === 0) {
      opts.onExit(failed ? 1 : 0);
      return;
    }
    const force = setTimeout(() => {
      log.error('workers did not stop in time; killing them');
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
      opts.onExit(1);
    }, opts.shutdownTimeoutSeconds * 1000 + STOP_GRACE_MS);
    force.unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  log.info({ workers: opts.workers, pid: process.pid }, 'starting workers');
  for (let i = 0; i < opts.workers; i++) fork();
}

/** A worker the primary is gone from cannot be told anything: the probe catches up instead. */
function ignoreSendError(): void {}
