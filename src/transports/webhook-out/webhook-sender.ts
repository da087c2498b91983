import type { LookupFunction } from 'node:net';
import { Agent } from 'undici';
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
export class WebhookSender {
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  /** Requests in flight, so `close()` can abort them. */
  readonly #active = new Set<AbortController>();
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
  async send(url: string, headers: Record<string, string>, body: string): Promise<SendResult> {
    const started = this.#now();
    const t0 = performance.now();
    // One controller and one timer per request: the whole attempt (connect, headers, the body
    // prefix) is bounded, including a receiver that drips its body a byte at a time.
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.#timeoutMs);
    this.#active.add(controller);
    const signal = controller.signal;
    const done = (r: Omit<SendResult, 'durationMs' | 'aborted'>): SendResult => {
      clearTimeout(timer);
      this.#active.delete(controller);
      return { ...r, durationMs: Math.round(performance.now() - t0), aborted: signal.aborted && !timedOut };
    };
    let status: number | null = null;
    let retryAfterMs: number | undefined;
    let error: string | null = null;
    let responseBody = '';
    try {
      const u = new URL(url);
      const res = await this.#agent.request({
        origin: u.origin,
        path: u.pathname + u.search,
        method: 'POST',
        headers,
        body,
        signal,
      });
      status = res.statusCode;
      retryAfterMs = parseRetryAfter(res.headers['retry-after'], started);
      if (status >= 300 && status < 400) {
        const loc = String(res.headers.location ?? '(no Location)').slice(0, LOCATION_MAX_CHARS);
        error = `redirect to ${loc} not followed`;
      }
      try {
        responseBody = await readPrefix(res.body, RESPONSE_BODY_MAX_BYTES);
      } catch (err) {
        error ??= `response body: ${describe(err, timedOut, this.#timeoutMs)}`;
      }
    } catch (err) {
      error = describe(err, timedOut, this.#timeoutMs);
    }
    return done({ status, responseBody, error, retryAfterMs });
  }

  /** Aborts requests in flight and closes every pooled connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#active) c.abort();
    await this.#agent.destroy().catch(() => undefined);
  }
}

/** Reads at most `max` bytes of a body as text, then drops the stream. */
async function readPrefix(body: AsyncIterable<Buffer> & { destroy(): void }, max: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    parts.push(chunk);
    size += chunk.length;
    // Leaving the loop destroys the stream (and its connection): an endless body stops here.
    if (size >= max) break;
  }
  return Buffer.concat(parts).subarray(0, max).toString('utf8');
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
