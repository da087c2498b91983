import type { LookupFunction } from 'node:net';
import { Agent, type Dispatcher } from 'undici';
import { guardedConnector } from './ssrf-guard.js';

/** Bytes of a receiver's response body kept on the attempt; the rest is never read. */
export const RESPONSE_BODY_MAX_BYTES = 4_096;
/** Characters of a redirect's `Location` kept in the attempt's error. */
const LOCATION_MAX_CHARS = 512;
/** milliseconds an idle keep-alive connection to a receiver stays open. */
const KEEP_ALIVE_MS = 30_000;

export interface SendResult {
  /** The HTTP status, or null when no response arrived. */
  status: number | null;
  durationMs: number;
  responseBody: string;
  error: string | null;
  /** `Retry-After` in milliseconds, when the receiver sent a valid one. */
  retryAfterMs: number | undefined;
  /** True when the send was cut short by `close()`: not an attempt. */
  aborted: boolean;
}

/** What the dispatcher sends with: one request at a time, in this thread or elsewhere. */
export interface Sender {
  /** POSTs `body` to `url`. Never throws: every failure is described in the result. */
  send(url: string, headers: Record<string, string>, body: string): Promise<SendResult>;
  /** Aborts requests in flight (answered as aborted) and closes every connection. Idempotent. */
  close(): Promise<void>;
}

export interface WebhookSenderOptions {
  timeoutMs: number;
  allowPrivateTargets: boolean;
  lookup?: LookupFunction | undefined;
  now?: () => number;
}

/**
 * Sends one webhook request with undici: keep-alive connection pools per origin (one Agent),
 * redirects never followed (a 3xx is a failure, recorded with its Location, RFC 9110 §15.4),
 * the whole attempt bounded by one timeout, and at most 4 KiB of the answer read, so a receiver
 * that streams an endless body costs nothing.
 */
export class WebhookSender implements Sender {
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  /** Requests in flight, so `close()` can abort them. */
  readonly #active = new Set<ActiveRequest>();
  #closed = false;

  constructor(opts: WebhookSenderOptions) {
    this.#timeoutMs = opts.timeoutMs;
    this.#now = opts.now ?? Date.now;
    this.#agent = new Agent({
      keepAliveTimeout: KEEP_ALIVE_MS,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      connect: guardedConnector({
        allowPrivateTargets: opts.allowPrivateTargets,
        connectTimeoutMs: opts.timeoutMs,
        lookup: opts.lookup,
      }),
    });
  }

  /** POSTs `body` to `url`. Never throws: every failure is described in the result. */
  send(url: string, headers: Record<string, string>, body: string): Promise<SendResult> {
    return new Promise<SendResult>((resolve) => {
      const started = this.#now();
      const t0 = performance.now();
      let status: number | null = null;
      let retryAfterMs: number | undefined;
      let error: string | null = null;
      const parts: Buffer[] = [];
      let size = 0;
      // One timer per request: the whole attempt (connect, headers, the body prefix) is bounded,
      // including a receiver that drips its body a byte at a time.
      const timer = setTimeout(() => {
        req.timedOut = true;
        settle(null);
      }, this.#timeoutMs);
      const settle = (err: unknown) => {
        if (req.settled) return;
        req.settled = true;
        clearTimeout(timer);
        this.#active.delete(req);
        // Stops the exchange if it is still going (timeout, enough body read, closing).
        if (!req.ended) req.controller?.abort(new Error('webhook attempt over'));
        if (req.timedOut || err != null) {
          const what = describe(err, req.timedOut, this.#timeoutMs);
          // Headers came, then the body failed: the status stands, the error says what broke.
          error = status !== null ? (error ?? `response body: ${what}`) : what;
        }
        resolve({
          status,
          responseBody: Buffer.concat(parts, Math.min(size, RESPONSE_BODY_MAX_BYTES)).toString('utf8'),
          error,
          retryAfterMs,
          durationMs: Math.round(performance.now() - t0),
          aborted: req.closing && !req.timedOut,
        });
      };
      const req: ActiveRequest = { controller: undefined, settled: false, ended: false, timedOut: false, closing: false, settle };
      this.#active.add(req);
      let target: URL;
      try {
        target = new URL(url);
      } catch (err) {
        settle(err);
        return;
      }
      // undici's dispatcher API (no AbortController, no body stream per request: a measured
      // ~40% of the client's CPU per request), with keep-alive pools per origin.
      this.#agent.dispatch(
        { origin: target.origin, path: target.pathname + target.search, method: 'POST', headers, body },
        {
          onRequestStart: (controller) => {
            req.controller = controller;
            if (req.settled) controller.abort(new Error('webhook attempt over'));
          },
          onResponseStart: (_controller, statusCode, resHeaders) => {
            status = statusCode;
            retryAfterMs = parseRetryAfter(resHeaders['retry-after'], started);
            if (statusCode >= 300 && statusCode < 400) {
              const loc = String(resHeaders.location ?? '(no Location)').slice(0, LOCATION_MAX_CHARS);
              error = `redirect to ${loc} not followed`;
            }
          },
          onResponseData: (_controller, chunk) => {
            if (size < RESPONSE_BODY_MAX_BYTES) parts.push(chunk);
            size += chunk.length;
            // Enough: the rest is never read and the connection is dropped, so a receiver that
            // streams an endless body costs nothing.
            if (size >= RESPONSE_BODY_MAX_BYTES) settle(null);
          },
          onResponseEnd: () => {
            req.ended = true;
            settle(null);
          },
          onResponseError: (_controller, err) => {
            req.ended = true;
            settle(err);
          },
        },
      );
    });
  }

  /** Aborts requests in flight and closes every pooled connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const r of this.#active) {
      r.closing = true;
      r.settle(null);
    }
    await this.#agent.destroy().catch(() => undefined);
  }
}

/** A request in flight, so `close()` and its timer can end it. */
interface ActiveRequest {
  controller: Dispatcher.DispatchController | undefined;
  settled: boolean;
  /** undici is done with it (answer complete, or failed). */
  ended: boolean;
  timedOut: boolean;
  /** Ended by `close()`: not an attempt. */
  closing: boolean;
  settle: (err: unknown) => void;
}

function describe(err: unknown, timedOut: boolean, timeoutMs: number): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (timedOut) {
    return `timeout: no complete answer within ${timeoutMs} ms`;
  }
  if (e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT') {
    return `timeout: no complete answer within ${timeoutMs} ms (${e.code})`;
  }
  if (e.code === 'TARGET_FORBIDDEN') return e.message ?? 'target forbidden';
  const code = e.code ?? e.cause?.code;
  const message = e.message ?? String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

/**
 * `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. Undefined when absent or
 * unparseable; never negative.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  const text = v.trim();
  if (/^\d{1,10}$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
