import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { listen, takePublish } from './baseline-server.js';

/**
 * The naive WebSocket baseline: a plain `ws` server, and `POST /v1/publish` sends the message to
 * every client in a for-loop (`ws.send(text)` each time). Any frame a client sends is answered
 * with an ack, so the benchmark's subscribe step works unchanged. No log, no backpressure.
 * Env: PORT, HOST. Prints `{"msg":"listening","url":...}` once ready.
 */
const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'POST' && path === '/v1/publish') {
    takePublish(req, res, (text) => {
      for (const client of wss.clients) client.send(text);
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

listen(server);
