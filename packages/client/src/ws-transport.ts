import { HeraldClientError } from './errors.js';
import type { WebSocketConstructor, WebSocketLike } from './env.js';
import { cancel, later } from './env.js';
import type { ClientFrame, ServerFrame } from './protocol.js';
import { httpBase, type Transport, type TransportHost, type Wanted } from './transport.js';

/** How long a request (publish, presence, auth) waits for its answer. */
export const REQUEST_TIMEOUT_MS = 10_000;

const OPEN = 1;

interface Pending {
  ok: (f: ServerFrame) => void;
  fail: (e: HeraldClientError) => void;
  timer: unknown;
}

/** `GET /v1/ws`: JSON frames, each request answered by the frame that echoes its `ref`. */
export class WsTransport implements Transport {
  readonly live = true;
  readonly #host: TransportHost;
  readonly #ws: WebSocketLike;
  readonly #pending = new Map<number, Pending>();
  #ref = 0;
  #open = false;

  constructor(host: TransportHost, url: string, token: string | undefined, Ws: WebSocketConstructor) {
    this.#host = host;
    // A browser cannot set headers on an upgrade: the token goes in the query, as the server expects.
    const q = token === undefined ? '' : `?token=${encodeURIComponent(token)}`;
    const ws = (this.#ws = new Ws(`${httpBase(url).replace(/^http/, 'ws')}/v1/ws${q}`));
    ws.onopen = () => {
      this.#open = true;
      host.opened();
    };
    ws.onmessage = (m) => {
      let f: ServerFrame;
      try {
        f = JSON.parse(String(m.data)) as ServerFrame;
      } catch {
        return;
      }
      const ref = 'ref' in f ? f.ref : undefined;
      const p = typeof ref === 'number' ? this.#pending.get(ref) : undefined;
      if (p) {
        this.#pending.delete(ref as number);
        cancel(p.timer);
        if (f.op === 'error') p.fail(new HeraldClientError(f.code, f.message));
        else p.ok(f);
      } else host.frame(f);
    };
    ws.onerror = () => {};
    ws.onclose = (c) => {
      this.#ws.onmessage = this.#ws.onclose = null;
      this.#failAll();
      host.dropped(c.code, !this.#open);
    };
  }

  subscribe(pattern: string, w: Wanted): void {
    this.#send({ op: 'subscribe', channel: pattern, since: w.since, presence: w.presence || undefined });
  }

  unsubscribe(pattern: string): void {
    this.#send({ op: 'unsubscribe', channel: pattern });
  }

  request(frame: ClientFrame): Promise<ServerFrame> {
    return new Promise((ok, fail) => {
      const ref = ++this.#ref;
      const timer = later(() => {
        this.#pending.delete(ref);
        fail(new HeraldClientError('TIMEOUT', `no answer to ${frame.op} in ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.#pending.set(ref, { ok, fail, timer });
      this.#send({ ...frame, ref });
    });
  }

  close(): void {
    this.#ws.onopen = this.#ws.onmessage = this.#ws.onclose = null;
    this.#failAll();
    this.#ws.close(1000);
  }

  #send(frame: ClientFrame): void {
    if (this.#ws.readyState === OPEN) this.#ws.send(JSON.stringify(frame));
  }

  #failAll(): void {
    for (const p of this.#pending.values()) {
      cancel(p.timer);
      p.fail(new HeraldClientError('CONNECTION_LOST', 'the connection dropped before the answer came; retry (with an idempotencyKey)'));
    }
    this.#pending.clear();
  }
}
