import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after } from 'node:test';
import { Webhook } from 'standardwebhooks';

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: string;
  /** Milliseconds since the epoch when the body was complete. */
  at: number;
}

/** What the receiver does with a request: answer, or misbehave. */
export type Reply =
  | { status: number; headers?: Record<string, string>; body?: string }
  | 'hang'
  | 'reset'
  | 'endless';

export interface Receiver {
  url: string;
  requests: ReceivedWebhook[];
  /** Requests being handled right now, by webhook-id (a second one at once is a double send). */
  readonly overlaps: string[];
  maxInFlight: number;
  handle(fn: (req: ReceivedWebhook, index: number) => Reply | Promise<Reply>): void;
  /** Verifies every request received so far with the official `standardwebhooks` library. */
  verifyAll(secret: string | string[]): unknown[];
  close(): Promise<void>;
}

/** A real webhook receiver: node:http on 127.0.0.1, port 0. Answers 200 unless told otherwise. */
export async function startReceiver(): Promise<Receiver> {
  let handler: (req: ReceivedWebhook, index: number) => Reply | Promise<Reply> = () => ({ status: 200, body: 'ok' });
  const requests: ReceivedWebhook[] = [];
  const overlaps: string[] = [];
  const active = new Map<string, number>();
  let inFlight = 0;
  const hanging = new Set<ServerResponse>();
  const receiver = { maxInFlight: 0 } as Receiver;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rec: ReceivedWebhook = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      const id = String(req.headers['webhook-id']);
      if ((active.get(id) ?? 0) > 0) overlaps.push(id);
      active.set(id, (active.get(id) ?? 0) + 1);
      inFlight++;
      receiver.maxInFlight = Math.max(receiver.maxInFlight, inFlight);
      const index = requests.push(rec) - 1;
      const done = () => {
        inFlight--;
        active.set(id, active.get(id)! - 1);
      };
      void Promise.resolve(handler(rec, index)).then((reply) => {
        if (reply === 'hang') {
          hanging.add(res);
          res.on('close', done);
          return;
        }
        if (reply === 'reset') {
          done();
          req.socket.resetAndDestroy();
          return;
        }
        if (reply === 'endless') {
          res.writeHead(200, { 'content-type': 'text/plain' });
          const chunk = Buffer.alloc(16_384, 'x');
          const pump = () => {
            while (!res.destroyed && res.write(chunk));
            if (!res.destroyed) res.once('drain', pump);
          };
          res.on('close', done);
          pump();
          return;
        }
        done();
        res.writeHead(reply.status, reply.headers ?? {});
        res.end(reply.body ?? '');
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(receiver, {
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    overlaps,
    handle(fn: typeof handler) {
      handler = fn;
    },
    verifyAll(secret: string | string[]) {
      const secrets = Array.isArray(secret) ? secret : [secret];
      return requests.map((r) => {
        const headers = {
          'webhook-id': String(r.headers['webhook-id']),
          'webhook-timestamp': String(r.headers['webhook-timestamp']),
          'webhook-signature': String(r.headers['webhook-signature']),
        };
        // Every secret given must verify on its own (key rotation sends one signature per secret).
        const results = secrets.map((s) => new Webhook(s).verify(r.body, headers));
        return results[0];
      });
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  });
}

/** Starts receivers for one test file; every receiver it starts is closed after the file. */
export function receiverPool(): () => Promise<Receiver> {
  const started: Receiver[] = [];
  after(async () => {
    for (const r of started) await r.close();
  });
  return async () => {
    const r = await startReceiver();
    started.push(r);
    return r;
  };
}
