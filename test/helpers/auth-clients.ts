import WebSocket from 'ws';
import { waitFor } from './herald.js';

export type Frame = Record<string, any>;

/** Status and JSON error of a refused WebSocket upgrade. */
export interface Refusal {
  status: number;
  code: string | undefined;
  retryAfter: string | undefined;
}

/**
 * A `ws` client for `/v1/ws` with request headers (Authorization, Cookie, Origin). Resolves to
 * the open client, or to the refusal when the upgrade is answered with an HTTP error.
 */
export function connectWs(url: string, headers: Record<string, string> = {}): Promise<WsClient | Refusal> {
  const ws = new WebSocket(url, { headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(new WsClient(ws)));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        let code: string | undefined;
        try {
          code = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
        } catch {
          code = undefined;
        }
        resolve({ status: res.statusCode ?? 0, code, retryAfter: res.headers['retry-after'] as string | undefined });
        ws.terminate();
      });
    });
    ws.once('error', (err) => reject(err));
  });
}

export async function openWsWith(url: string, headers: Record<string, string> = {}): Promise<WsClient> {
  const c = await connectWs(url, headers);
  if (!(c instanceof WsClient)) throw new Error(`upgrade refused: ${c.status} ${c.code}`);
  return c;
}

export class WsClient {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | undefined;
  #ref = 0;

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      try {
        this.frames.push(JSON.parse(data.toString()) as Frame);
      } catch {
        /* plain text (seed /ws) */
      }
    });
    ws.on('close', (code, reason) => (this.closed = { code, reason: reason.toString() }));
  }

  send(frame: Frame | string): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Sends `frame` with a fresh ref and resolves to the reply (ack, error or presence) carrying it. */
  async request(frame: Frame, ms = 5_000): Promise<Frame> {
    const ref = `r${++this.#ref}`;
    this.send({ ...frame, ref });
    return (await waitFor(() => this.frames.find((f) => f.ref === ref), ms, `a reply to ${String(frame.op)}`))!;
  }

  next(pred: (f: Frame) => boolean, ms = 5_000): Promise<Frame> {
    return waitFor(() => this.frames.find(pred), ms, 'a matching frame') as Promise<Frame>;
  }

  closedWith(ms = 5_000): Promise<{ code: number; reason: string }> {
    return waitFor(() => this.closed, ms, 'the socket to close') as Promise<{ code: number; reason: string }>;
  }

  close(): void {
    this.ws.close();
  }
}
