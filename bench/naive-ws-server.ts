import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

/**
 * The naive WebSocket baseline: a plain `ws` server, and `POST /v1/publish` sends the message to
 * every client in a for-loop (`ws.send(text)` each time). Any frame a client sends is answered
 * with an ack, so the benchmark's subscribe step works unchanged. No log, no backpressure.
 * Env: PORT, HOST. Prints `{"msg":"listening","url":...}` once ready.
 */
const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'POST' && path === '/v1/publish') {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const msg = JSON.parse(Buffer.concat(chunks).toString()) as { data: unknown };
      const text = typeof msg.data === 'string' ? msg.data : JSON.stringify(msg.data);
      for (const client of wss.clients) client.send(text);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
    return;
  }
  res.writeHead(404).end();
});
const wss = new WebSocketServer({ server, path: '/v1/ws', perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('message', () => ws.send('{"op":"ack"}'));
  ws.on('error', () => undefined);
});

server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  const addr = server.address() as { port: number };
  console.log(JSON.stringify({ msg: 'listening', url: `http://127.0.0.1:${addr.port}` }));
});
process.on('SIGTERM', () => process.exit(0));
