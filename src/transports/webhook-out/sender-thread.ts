import { parentPort, workerData } from 'node:worker_threads';
import { WebhookSender, type SendResult, type WebhookSenderOptions } from './webhook-sender.js';

/**
 * A sender thread (see ThreadedWebhookSender): its own WebhookSender, with its own keep-alive
 * pools and SSRF guard, sending what the main thread asks and answering in batches.
 *
 * In: `{ send: [id, url, headers, body][] }` or `{ close: true }`. Out: `[id, SendResult][]`.
 */

type Job = [id: number, url: string, headers: Record<string, string>, body: string];

const port = parentPort!;
const sender = new WebhookSender(workerData as WebhookSenderOptions);
let out: [number, SendResult][] = [];
let scheduled = false;

function flush(): void {
  scheduled = false;
  if (out.length === 0) return;
  port.postMessage(out);
  out = [];
}

function done(id: number, r: SendResult): void {
  out.push([id, r]);
  if (!scheduled) {
    scheduled = true;
    // Answers that finish in the same turn of the event loop travel in one message.
    setImmediate(flush);
  }
}

port.on('message', (m: { send?: Job[]; close?: boolean }) => {
  if (m.send) {
    for (const [id, url, headers, body] of m.send) void sender.send(url, headers, body).then((r) => done(id, r));
  }
  if (m.close) {
    void sender.close().then(() => {
      // close() settled every request in flight (as aborted); their answers go out first.
      setImmediate(() => {
        flush();
        port.close();
      });
    });
  }
});
