import { fork, type ChildProcess } from 'node:child_process';

/**
 * Request/response over the IPC channel of `fork`: the orchestrator calls, a child process
 * (client worker, publisher) answers. One message each way per call; nothing on the hot path.
 */

interface Request {
  id: number;
  cmd: string;
  args: unknown;
}

interface Response {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

/** The parent's end: a forked child and a typed `call`. */
export class ChildRpc {
  readonly child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #next = 1;
  #exited = false;

  constructor(modulePath: string, name: string) {
    // Children never inherit the parent's flags; BENCH_LOAD_FLAGS (say `--cpu-prof`) profiles
    // the load generator itself.
    const execArgv = (process.env.BENCH_LOAD_FLAGS ?? '').split(' ').filter(Boolean);
    this.child = fork(modulePath, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: Response) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(new Error(`${name}: ${m.error}`));
    });
    this.child.once('exit', (code, signal) => {
      this.#exited = true;
      for (const p of this.#pending.values()) p.reject(new Error(`${name} exited (${code ?? signal})`));
      this.#pending.clear();
    });
  }

  call<T>(cmd: string, args: unknown = {}): Promise<T> {
    if (this.#exited) return Promise.reject(new Error(`${cmd}: process has exited`));
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, cmd, args } satisfies Request);
    });
  }

  /** Asks the child to exit, and kills it if it has not within `ms`. Idempotent. */
  async close(ms = 5_000): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.call('exit').catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await exited;
    clearTimeout(timer);
  }
}

/** The child's end: answers calls with the handlers; `exit` ends the process. */
export function serveRpc(handlers: Record<string, (args: any) => unknown>): void {
  process.on('message', (m: Request) => {
    if (m.cmd === 'exit') {
      process.exit(0);
    }
    const h = handlers[m.cmd];
    const reply = (r: Omit<Response, 'id'>) => process.send?.({ id: m.id, ...r });
    if (!h) {
      reply({ ok: false, error: `unknown command ${m.cmd}` });
      return;
    }
    Promise.resolve()
      .then(() => h(m.args))
      .then(
        (value) => reply({ ok: true, value }),
        (err: unknown) => reply({ ok: false, error: (err as Error)?.stack ?? String(err) }),
      );
  });
  // The orchestrator died: never outlive it with thousands of open sockets.
  process.on('disconnect', () => process.exit(0));
}
