import { HeraldClientError, refusal } from './errors.js';
import { platform } from './env.js';
import { earlier } from './ids.js';
import { SSE_EVENT, type EventFrame, type SseErrorData, type SsePresenceData, type SseResetData } from './protocol.js';
import { bearer, httpBase, type Transport, type TransportHost, type Wanted } from './transport.js';

/**
 * `GET /v1/stream?format=json`, read with fetch rather than EventSource: the token goes in the
 * Authorization header (not the URL), a 401/403 is seen with its code, and the stream can be
 * reopened with a fresh token whenever the connection chooses. One stream carries every
 * subscription, from the earliest position among them (each subscription skips what it had).
 */
export class SseTransport implements Transport {
  readonly live = false;
  readonly #host: TransportHost;
  readonly #abort = new platform.AbortController();
  #closed = false;

  constructor(host: TransportHost, url: string, token: string | undefined, subs: ReadonlyMap<string, Wanted>) {
    this.#host = host;
    const q = ['format=json'];
    let since: string | undefined;
    let presence = false;
    for (const [pattern, w] of subs) {
      q.push(`channel=${encodeURIComponent(pattern)}`);
      since = earlier(since, w.since);
      presence ||= w.presence;
    }
    if (since !== undefined) q.push(`lastEventId=${encodeURIComponent(since)}`);
    if (presence) q.push('presence=true');
    void this.#run(`${httpBase(url)}/v1/stream?${q.join('&')}`, token);
  }

  subscribe(): void {}
  unsubscribe(): void {}

  request(): Promise<never> {
    return Promise.reject(new HeraldClientError('OP_UNKNOWN', 'requests go over HTTP on the SSE transport'));
  }

  close(): void {
    this.#closed = true;
    this.#abort.abort();
  }

  async #run(url: string, token: string | undefined): Promise<void> {
    const host = this.#host;
    let opened = false;
    try {
      const res = await platform.fetch(url, { headers: { accept: 'text/event-stream', ...bearer(token) }, signal: this.#abort.signal });
      if (res.status === 401 || res.status === 403) return host.refused(await refusal(res, true));
      if (res.status !== 200 || !res.body) return host.dropped(res.status, true);
      opened = true;
      host.opened();
      const reader = res.body.getReader();
      const text = new platform.TextDecoder();
      let buf = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done || this.#closed) break;
        buf += text.decode(value, { stream: true });
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          this.#block(buf.slice(0, end));
          buf = buf.slice(end + 2);
        }
      }
    } catch {
      // aborted, or the network failed: either way the stream is over
    }
    if (!this.#closed) host.dropped(undefined, !opened);
  }

  /** One SSE block (WHATWG HTML 9.2.6), as Herald writes them: `\n` line ends, `field: value`. */
  #block(block: string): void {
    let event = 'message';
    let data = '';
    for (const line of block.split('\n')) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue; // a comment (heartbeat) or nothing
      const field = line.slice(0, colon);
      const value = line.slice(colon + (line[colon + 1] === ' ' ? 2 : 1));
      if (field === 'event') event = value;
      else if (field === 'data') data = data === '' ? value : `${data}\n${value}`;
    }
    if (data === '') return;
    const host = this.#host;
    const body = JSON.parse(data) as unknown;
    if (event === SSE_EVENT.RESET) {
      const r = body as SseResetData;
      host.frame({ op: 'reset', channel: '', reason: r.reason, id: r.lastEventId });
    } else if (event === SSE_EVENT.JOIN || event === SSE_EVENT.LEAVE) {
      const p = body as SsePresenceData;
      host.frame({ op: event === SSE_EVENT.JOIN ? 'join' : 'leave', channel: p.channel, identity: p.identity });
    } else if (event === SSE_EVENT.ERROR) {
      const e = body as SseErrorData;
      host.frame({ op: 'error', code: e.code, message: e.message });
    } else {
      host.frame({ op: 'event', ...(body as Omit<EventFrame, 'op'>) });
    }
  }
}
