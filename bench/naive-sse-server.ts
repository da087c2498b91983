import { createServer, type ServerResponse } from 'node:http';

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
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const msg = JSON.parse(Buffer.concat(chunks).toString()) as { data: unknown };
      const text = typeof msg.data === 'string' ? msg.data : JSON.stringify(msg.data);
      for (const client of clients) client.write(`data: ${text}\n\n`);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
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

server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  const addr = server.address() as { port: number };
  console.log(JSON.stringify({ msg: 'listening', url: `http://127.0.0.1:${addr.port}` }));
});
process.on('SIGTERM', () => process.exit(0));
