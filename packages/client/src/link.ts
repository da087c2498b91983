import { HeraldClientError, refusal } from './errors.js';
import { cancel, later, platform, type Timer, type WebSocketConstructor } from './env.js';
import { earlier, isAfter, matches } from './ids.js';
import type { EphemeralEventFrame, EventFrame, PresenceChangeFrame, PresenceSnapshotFrame, ResetReason, ServerFrame } from './protocol.js';
import { CLOSE } from './protocol.js';
import { SseTransport } from './sse-transport.js';
import { bearer, httpBase, type Transport, type TransportHost, type Wanted } from './transport.js';
import { WsTransport } from './ws-transport.js';

/** Reconnect delays: full jitter (a random wait up to base * 2^attempt, capped). */
export const BACKOFF_BASE_MS = 500;
export const BACKOFF_MAX_MS = 30_000;
/** Renew a token this long before its `exp` (or at half its remaining life, if sooner). */
export const REFRESH_BEFORE_EXPIRY_MS = 30_000;
/** At most one renewal this often, whatever `exp` the tokens from getToken carry. */
const REFRESH_MIN_INTERVAL_MS = 1_000;
/** With `transport: 'auto'`, this many WebSocket attempts that never opened switch to SSE. */
const AUTO_WS_FAILURES_BEFORE_SSE = 2;

export type TransportKind = 'websocket' | 'sse' | 'auto';
export type Status = 'connecting' | 'open' | 'reconnecting' | 'failed' | 'closed';

export interface LinkOptions {
  url: string;
  getToken?: (() => string | Promise<string>) | undefined;
  transport?: TransportKind | undefined;
  /** The WebSocket class where the platform has none (Node 20: `import { WebSocket } from 'ws'`). */
  WebSocket?: WebSocketConstructor | undefined;
  backoffBaseMs?: number | undefined;
  backoffMaxMs?: number | undefined;
  refreshBeforeExpiryMs?: number | undefined;
}

/** Where a connection's news goes (the client, or the leader tab that relays it). */
export interface LinkListener {
  /** A logged event, or an ephemeral one (no id: it moves no position). */
  event(e: EventFrame | EphemeralEventFrame): void;
  reset(pattern: string, reason: ResetReason, head: string): void;
  presence(c: PresenceChangeFrame): void;
  status(s: Status): void;
  error(e: HeraldClientError): void;
}

/**
 * One connection to Herald that outlives its sockets: it reconnects with backoff, resumes every
 * subscription after the last id it delivered, renews the token before it expires, and stops
 * with a fatal error when the credentials are refused instead of retrying for ever.
 */
export class Link {
  readonly #o: LinkOptions;
  readonly #to: LinkListener;
  readonly #subs = new Map<string, Wanted>();
  #t: Transport | undefined;
  #open = false;
  #token: string | undefined;
  #attempt = 0;
  #wsFailures = 0;
  #retriedAuth = false;
  #timer: Timer;
  #refresh: Timer;
  #restartQueued = false;
  #state: Status = 'connecting';
  #waiters: Array<() => void> = [];

  constructor(o: LinkOptions, to: LinkListener) {
    this.#o = o;
    this.#to = to;
    void this.#connect();
  }

  get status(): Status {
    return this.#state;
  }

  /** Carries `pattern` from `since`; a known pattern asked from an earlier id is read again from there. */
  want(pattern: string, since: string | undefined, presence: boolean): void {
    const w = this.#subs.get(pattern);
    if (w) {
      const earlierAsked = since !== undefined && (w.since === undefined || isAfter(w.since, since));
      if (!earlierAsked && (w.presence || !presence)) return;
    }
    const next = { since: w ? earlier(w.since, since) : since, presence: presence || (w?.presence ?? false) };
    this.#subs.set(pattern, next);
    if (!this.#t || !this.#open) return;
    if (!this.#t.live) return this.#restartSoon();
    if (w) this.#t.unsubscribe(pattern);
    this.#t.subscribe(pattern, next);
  }

  drop(pattern: string): void {
    if (!this.#subs.delete(pattern) || !this.#t || !this.#open) return;
    if (this.#t.live) this.#t.unsubscribe(pattern);
    else this.#restartSoon();
  }

  async publish(channel: string, data: unknown, type?: string, idempotencyKey?: string, ephemeral?: boolean): Promise<string | undefined> {
    const frame = { op: 'publish' as const, channel, data, type, idempotencyKey, ephemeral: ephemeral || undefined };
    if (this.#kind() === 'websocket') return (await this.#request(frame)).id;
    const res = await this.#http('POST', '/v1/publish', JSON.stringify(frame));
    return ((await res.json()) as { id?: string }).id;
  }

  async members(channel: string): Promise<PresenceSnapshotFrame> {
    if (this.#kind() === 'websocket') return (await this.#request({ op: 'presence', channel })) as PresenceSnapshotFrame;
    const res = await this.#http('GET', `/v1/channels/${encodeURIComponent(channel)}/presence`);
    return { op: 'presence', ...((await res.json()) as Omit<PresenceSnapshotFrame, 'op'>) };
  }

  close(): void {
    this.#status('closed');
    cancel(this.#timer);
    cancel(this.#refresh);
    this.#t?.close();
    this.#t = undefined;
  }

  #kind(): 'websocket' | 'sse' {
    const k = this.#o.transport ?? 'auto';
    if (k !== 'auto') return k;
    return this.#wsClass() && this.#wsFailures < AUTO_WS_FAILURES_BEFORE_SSE ? 'websocket' : 'sse';
  }

  #wsClass(): WebSocketConstructor | undefined {
    return this.#o.WebSocket ?? platform.WebSocket;
  }

  #status(s: Status): void {
    if (this.#state === s || this.#state === 'closed' || this.#state === 'failed') return;
    this.#state = s;
    this.#to.status(s);
  }

  async #connect(fresh?: string): Promise<void> {
    if (this.#ended()) return;
    try {
      this.#token = fresh ?? (this.#o.getToken ? await this.#o.getToken() : undefined);
    } catch (err) {
      this.#to.error(new HeraldClientError('UNAUTHORIZED', `getToken failed: ${String(err)}`));
      return this.#retry();
    }
    if (this.#ended()) return;
    const host: TransportHost = {
      opened: () => this.#opened(t),
      dropped: (code, beforeOpen) => this.#dropped(t, code, beforeOpen),
      refused: (err) => this.#refused(t, err),
      frame: (f) => this.#frame(f),
    };
    const kind = this.#kind();
    const t: Transport =
      kind === 'websocket'
        ? new WsTransport(host, this.#o.url, this.#token, this.#wsClass()!)
        : new SseTransport(host, this.#o.url, this.#token, this.#subs);
    this.#t = t;
  }

  #ended(): boolean {
    return this.#state === 'closed' || this.#state === 'failed';
  }

  #opened(t: Transport): void {
    if (t !== this.#t) return;
    this.#open = true;
    this.#attempt = 0;
    this.#wsFailures = 0;
    this.#retriedAuth = false;
    if (t.live) for (const [pattern, w] of this.#subs) t.subscribe(pattern, w);
    this.#status('open');
    this.#armRefresh();
    for (const w of this.#waiters.splice(0)) w();
  }

  #dropped(t: Transport, code: number | undefined, beforeOpen: boolean): void {
    if (t !== this.#t) return;
    this.#t = undefined;
    this.#open = false;
    cancel(this.#refresh);
    if (this.#ended()) return;
    if (code === CLOSE.FORBIDDEN) return this.#fail(new HeraldClientError('FORBIDDEN', 'the token no longer covers the subscriptions', 403, true));
    if (code === CLOSE.TOKEN_EXPIRED) {
      this.#status('reconnecting');
      return void this.#connect(); // a fresh token, at once
    }
    if (beforeOpen && t.live) {
      this.#wsFailures++;
      // A refused upgrade is only a failed connection to a browser; ask over HTTP why.
      return void this.#probe();
    }
    this.#retry();
  }

  #refused(t: Transport, err: HeraldClientError): void {
    if (t !== this.#t) return;
    this.#t = undefined;
    this.#open = false;
    // A token may expire between getToken and the request: one more try with a fresh one.
    if (err.status === 401 && this.#o.getToken && !this.#retriedAuth) {
      this.#retriedAuth = true;
      return void this.#connect();
    }
    this.#fail(err);
  }

  async #probe(): Promise<void> {
    const first = this.#subs.keys().next().value as string | undefined;
    if (first !== undefined) {
      const abort = new platform.AbortController();
      try {
        const res = await platform.fetch(`${httpBase(this.#o.url)}/v1/stream?channel=${encodeURIComponent(first)}`, {
          headers: bearer(this.#token),
          signal: abort.signal,
        });
        if (res.status === 401 || res.status === 403) {
          const t = { live: true } as Transport;
          this.#t = t;
          return this.#refused(t, await refusal(res, true));
        }
      } catch {
        // unreachable: an ordinary retry
      }
      abort.abort();
    }
    this.#retry();
  }

  #fail(err: HeraldClientError): void {
    this.#status('failed');
    this.#to.error(err);
    for (const w of this.#waiters.splice(0)) w();
  }

  #retry(): void {
    if (this.#ended()) return;
    this.#status('reconnecting');
    const base = this.#o.backoffBaseMs ?? BACKOFF_BASE_MS;
    const cap = Math.min(this.#o.backoffMaxMs ?? BACKOFF_MAX_MS, base * 2 ** Math.min(this.#attempt++, 30));
    this.#timer = later(() => void this.#connect(), Math.random() * cap);
  }

  #restartSoon(): void {
    if (this.#restartQueued) return;
    this.#restartQueued = true;
    void Promise.resolve().then(() => {
      this.#restartQueued = false;
      this.#restart();
    });
  }

  /** Replaces the transport at once (SSE: new subscriptions or a new token); resumes by position. */
  #restart(token?: string): void {
    if (this.#ended()) return;
    const old = this.#t;
    this.#t = undefined;
    this.#open = false;
    old?.close();
    void this.#connect(token);
  }

  #frame(f: ServerFrame): void {
    if (f.op === 'event' && f.id === undefined) {
      // Ephemeral: not in the log, so it neither moves nor is checked against any position.
      if ([...this.#subs.keys()].some((p) => matches(p, f.channel))) this.#to.event(f);
    } else if (f.op === 'event') {
      let fresh = false;
      for (const [pattern, w] of this.#subs) {
        if (matches(pattern, f.channel) && isAfter(f.id, w.since)) {
          w.since = f.id;
          fresh = true;
        }
      }
      if (fresh) this.#to.event(f);
    } else if (f.op === 'reset') {
      for (const [pattern, w] of this.#subs) {
        if (f.channel !== '' && f.channel !== pattern) continue;
        w.since = f.id;
        this.#to.reset(pattern, f.reason, f.id);
      }
    } else if (f.op === 'join' || f.op === 'leave') {
      this.#to.presence(f);
    } else if (f.op === 'error') {
      // SSE: the stream ends after TOKEN_EXPIRED, and the reconnect fetches a fresh token.
      if (f.code !== 'TOKEN_EXPIRED') this.#to.error(new HeraldClientError(f.code, f.message));
    }
  }

  async #request(frame: Parameters<Transport['request']>[0]): Promise<ServerFrame & { id?: string }> {
    while (!this.#open || !this.#t) {
      if (this.#ended()) throw new HeraldClientError('CLOSED', `the client is ${this.#state}`);
      await new Promise<void>((r) => this.#waiters.push(r));
    }
    return this.#t.request(frame) as Promise<ServerFrame & { id?: string }>;
  }

  async #http(method: string, path: string, body?: string) {
    if (this.#ended()) throw new HeraldClientError('CLOSED', `the client is ${this.#state}`);
    const token = this.#o.getToken && this.#token === undefined ? await this.#o.getToken() : this.#token;
    const headers = { ...bearer(token), ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
    const res = await platform.fetch(`${httpBase(this.#o.url)}${path}`, { method, headers, body });
    if (res.status >= 300) throw await refusal(res);
    return res;
  }

  /** Schedules the token's renewal before its `exp` (JWTs only; other tokens are not read). */
  #armRefresh(): void {
    cancel(this.#refresh);
    const exp = expiryMs(this.#token);
    if (exp === undefined || !this.#o.getToken) return;
    const left = exp - Date.now();
    const lead = Math.min(this.#o.refreshBeforeExpiryMs ?? REFRESH_BEFORE_EXPIRY_MS, left / 2);
    const wait = Math.max(REFRESH_MIN_INTERVAL_MS, left - lead);
    this.#refresh = later(() => void this.#renew(), wait);
  }

  async #renew(): Promise<void> {
    const t = this.#t;
    if (!t || !this.#open) return;
    let token: string;
    try {
      token = await this.#o.getToken!();
    } catch (err) {
      this.#to.error(new HeraldClientError('UNAUTHORIZED', `getToken failed: ${String(err)}`));
      return;
    }
    if (t !== this.#t) return;
    if (!t.live) {
      // SSE: the same subscriptions on a new stream with the new token, from their positions.
      this.#restart(token);
      return;
    }
    try {
      await t.request({ op: 'auth', token });
      this.#token = token;
      this.#armRefresh();
    } catch (err) {
      // Refused (the server closes with 4401 at expiry, then a fresh token is fetched) or lost.
      if (err instanceof HeraldClientError && err.code !== 'CONNECTION_LOST') this.#to.error(err);
    }
  }
}

/** A JWT's `exp` in milliseconds, or undefined for anything else. */
function expiryMs(token: string | undefined): number | undefined {
  const part = token?.split('.')[1];
  if (part === undefined) return undefined;
  try {
    const claims = JSON.parse(platform.atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as { exp?: unknown };
    return typeof claims.exp === 'number' ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
