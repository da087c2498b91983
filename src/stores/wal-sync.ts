import { closeSync, fdatasync, openSync } from 'node:fs';

/**
 * Makes SQLite commits durable without stalling the event loop.
 *
 * With `synchronous = FULL`, SQLite fsyncs the WAL inside every commit: the event loop waits for
 * the disk (0.4-3 ms a commit here), and nothing else runs meanwhile: no request is read, no
 * subscriber written. Instead the connection runs at `NORMAL` (a commit is in the WAL, safe
 * from a process crash but not yet from a power loss) and whoever needs a commit to survive a
 * power loss awaits `sync()`, an `fdatasync` of the WAL file on libuv's thread pool. What is
 * acknowledged is exactly as durable as under `FULL`: the WAL holds every commit in order, and
 * an `fdatasync` that starts after a commit makes it, and all before it, durable.
 *
 * Calls coalesce: a call made while a sync runs shares the one that starts after it (the
 * running one may have begun before the caller's commit), so a burst of commits costs two
 * syncs, not one each.
 */
export class WalSync {
  readonly #fd: number;
  #running: Promise<void> | undefined;
  #next: Promise<void> | undefined;
  #failure: Error | undefined;
  #closed = false;

  /** `walFile`: the database's `-wal` file, which SQLite keeps while a connection is open. */
  constructor(walFile: string) {
    // Read-only is enough: fdatasync flushes the file, whichever descriptor wrote it.
    this.#fd = openSync(walFile, 'r');
  }

  /** Why a sync failed, once one has: from then on the file promises nothing. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /**
   * Resolves once every commit made before the call is on disk. After a failed sync every call
   * fails: the kernel may have dropped the unwritten pages, so nothing later can be promised.
   */
  sync(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#next) return this.#next;
    if (!this.#running) return this.#start();
    const next: Promise<void> = this.#running.then(
      () => this.#afterRunning(next),
      () => this.#afterRunning(next),
    );
    this.#next = next;
    return next;
  }

  /** The queued sync starts: later callers queue behind it in turn. */
  #afterRunning(next: Promise<void>): Promise<void> {
    if (this.#next === next) this.#next = undefined;
    return this.#failure ? Promise.reject(this.#failure) : this.#start();
  }

  #start(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('the WAL file is closed'));
    const run = new Promise<void>((resolve, reject) => {
      fdatasync(this.#fd, (err) => {
        if (err) {
          this.#failure = new Error(`fdatasync of the SQLite WAL failed: ${err.message}`);
          reject(this.#failure);
        } else resolve();
      });
    });
    this.#running = run;
    const clear = () => {
      if (this.#running === run) this.#running = undefined;
    };
    run.then(clear, clear);
    return run;
  }

  /** Waits for syncs in flight, then closes the descriptor. */
  async close(): Promise<void> {
    if (this.#closed) return;
    // First: a sync asked for from now on fails instead of using a descriptor about to close.
    this.#closed = true;
    await Promise.allSettled([this.#running, this.#next]);
    closeSync(this.#fd);
  }
}
