import { createServer, type ServerResponse } from 'node:http';
import { listen, takePublish } from './baseline-server.js';

/**
 * The naive SSE baseline: what a first implementation looks like. A plain `node:http` server
 * keeps every stream in a Set, and `POST /v1/publish` writes the message to each one in a
 * for-loop, one write per client per message. No log, no batching, no backpressure.
 * Env: PORT, HOST. Prints `{"msg":"listening","url":...}` once ready.
 */
const clients = new Set<ServerResponse>();

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'POST' && path === '/v1/publish') {
    takePublish(req, res, (text) => {
      for (const client of clients) client.write(`data: ${text}\n\n`);
    });
    return;
  }
  if (req.method === 'GET' && path === '/v1/stream') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(': connected\n\n');
    clients.add(res);
    req.on('close', () => clients.delete(res));
    return;
  }
  res.writeHead(404).end();
});

listen(server);
