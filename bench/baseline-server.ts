import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/**
 * What the benchmark's reference servers (the naive baselines and the floor) share: taking a
 * publish, and listening the way the orchestrator expects.
 */

/** Reads a `POST /v1/publish` body `{ "data" }`, hands `send` its text, then answers 200. */
export function takePublish(req: IncomingMessage, res: ServerResponse, send: (text: string) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const msg = JSON.parse(Buffer.concat(chunks).toString()) as { data: unknown };
    send(typeof msg.data === 'string' ? msg.data : JSON.stringify(msg.data));
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
}

/** Listens on PORT and HOST (default: any free port on loopback), prints `{"msg":"listening","url"}`. */
export function listen(server: Server): void {
  server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
    const addr = server.address() as { port: number };
    console.log(JSON.stringify({ msg: 'listening', url: `http://127.0.0.1:${addr.port}` }));
  });
  process.on('SIGTERM', () => process.exit(0));
}
