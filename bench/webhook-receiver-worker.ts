import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveRpc } from './bench-ipc.js';

/**
 * The outbound webhooks benchmark's receiver, in a process of its own so its CPU is not the
 * publisher's: it answers 200 to every request as soon as the body is in, counts distinct
 * `webhook-id`s per path (a retried delivery counts once) and, when asked, the lag from the
 * event's stored `time` to the moment the whole request arrived.
 *
 * Calls: `listen` → base URL; `reset { lags }`; `until { n, timeoutMs }` → { received, lags }
 * (`received` below `n` when the time ran out).
 */

const ids = new Set<string>();
let lags: number[] | undefined;
let waiter: { n: number; resolve: () => void } | undefined;

const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    ids.add(`${String(req.headers['webhook-id'])}/${req.url}`);
    if (lags) {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { time: string };
      lags.push(Date.now() - Date.parse(body.time));
    }
    res.writeHead(200).end();
    if (waiter && ids.size >= waiter.n) waiter.resolve();
  });
});

serveRpc({
  listen: async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  },
  reset: (args: { lags?: boolean }) => {
    ids.clear();
    lags = args.lags ? [] : undefined;
    return true;
  },
  until: async (args: { n: number; timeoutMs: number }) => {
    if (ids.size < args.n) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          waiter = undefined;
          resolve();
        }, args.timeoutMs);
        waiter = {
          n: args.n,
          resolve: () => {
            clearTimeout(timer);
            waiter = undefined;
            resolve();
          },
        };
      });
    }
    return { received: ids.size, lags: lags ?? [] };
  },
});
