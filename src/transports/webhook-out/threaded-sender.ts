import { Worker } from 'node:worker_threads';
import type { Logger } from '../../observability/logger.js';
import { WebhookSender, type SendResult, type Sender, type WebhookSenderOptions } from './webhook-sender.js';

/**
 * Sends webhooks from worker threads, so the HTTP work (undici's request writing and response
 * parsing, the system calls) runs beside the event loop that plans, claims and records
 * deliveries instead of on it: on a 2-core machine the two halves each get a core.
 *
 * Requests started in one turn of the event loop go to a thread in one message, and each
 * thread answers in batches too, so the hand-over costs a few microseconds per request. Threads
 * take turns per batch. If a thread fails, its requests come back as aborted (the dispatcher
 * gives their leases back, no attempt counted) and the rest is sent from the event loop.
 */
export class ThreadedWebhookSender implements Sender {
  readonly #opts: Omit<WebhookSenderOptions, 'lookup' | 'now'>;
  readonly #log: Logger;
  readonly #workers: Worker[] = [];
  /** Requests sent to each thread and not answered, by id. */
  readonly #pending = new Map<number, { worker: Worker; resolve: (r: SendResult) => void }>();
  #batch: [number, string, Record<string, string>, string][] = [];
  #next = 1;
  #turn = 0;
  #fallback: WebhookSender | undefined;
  #closed = false;

  constructor(opts: Omit<WebhookSenderOptions, 'lookup' | 'now'>, threads: number, log: Logger) {
    this.#opts = opts;
    this.#log = log;
    for (let i = 0; i < threads; i++) this.#spawn();
  }

  #spawn(): void {
    const worker = new Worker(new URL('./sender-thread.js', import.meta.url), { workerData: this.#opts });
    worker.on('message', (answers: [number, SendResult][]) => {
      for (const [id, r] of answers) {
        const p = this.#pending.get(id);
        if (!p) continue;
        this.#pending.delete(id);
        p.resolve(r);
      }
    });
    const lost = (why: string) => {
      const i = this.#workers.indexOf(worker);
      if (i < 0) return;
      this.#workers.splice(i, 1);
      if (!this.#closed) this.#log.error({ why }, 'outbound webhooks: a sender thread failed; sending from the event loop');
      for (const [id, p] of this.#pending) {
        if (p.worker !== worker) continue;
        this.#pending.delete(id);
        p.resolve({ status: null, durationMs: 0, responseBody: '', error: `sender thread failed: ${why}`, retryAfterMs: undefined, aborted: true });
      }
    };
    worker.on('error', (err) => lost(err.message));
    worker.on('exit', (code) => lost(`exited with ${code}`));
    this.#workers.push(worker);
  }

  send(url: string, headers: Record<string, string>, body: string): Promise<SendResult> {
    if (this.#workers.length === 0 || this.#closed) {
      this.#fallback ??= new WebhookSender(this.#opts);
      return this.#fallback.send(url, headers, body);
    }
    return new Promise<SendResult>((resolve) => {
      const id = this.#next++;
      this.#pending.set(id, { worker: undefined as unknown as Worker, resolve });
      if (this.#batch.length === 0) queueMicrotask(() => this.#post());
      this.#batch.push([id, url, headers, body]);
    });
  }

  #post(): void {
    const batch = this.#batch;
    this.#batch = [];
    const worker = this.#workers[this.#turn++ % this.#workers.length];
    if (!worker) {
      // Every thread is gone: these go out from here.
      for (const [id, url, headers, body] of batch) {
        const p = this.#pending.get(id)!;
        this.#pending.delete(id);
        this.#fallback ??= new WebhookSender(this.#opts);
        void this.#fallback.send(url, headers, body).then(p.resolve);
      }
      return;
    }
    for (const [id] of batch) this.#pending.get(id)!.worker = worker;
    worker.postMessage({ send: batch });
  }

  /** Aborts requests in flight (answered as aborted) and stops the threads. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#batch.length > 0) this.#post();
    await Promise.all(
      [...this.#workers].map(
        (w) =>
          new Promise<void>((resolve) => {
            w.once('exit', () => resolve());
            w.postMessage({ close: true });
          }),
      ),
    );
    await this.#fallback?.close();
  }
}
