import type { HeraldClientError } from './errors.js';
import type { ClientFrame, ServerFrame } from './protocol.js';

/** One subscription as the connection carries it: its pattern, its position, presence wanted. */
export interface Wanted {
  since: string | undefined;
  presence: boolean;
}

/** What a transport tells the connection that owns it. */
export interface TransportHost {
  opened(): void;
  /** The connection ended; `beforeOpen` when it never opened (a refused upgrade looks like this). */
  dropped(code: number | undefined, beforeOpen: boolean): void;
  /** The server refused the credentials or the subscriptions (HTTP 401/403). */
  refused(err: HeraldClientError): void;
  frame(f: ServerFrame): void;
}

export interface Transport {
  /** WebSocket: one frame per change. SSE: none; the stream is opened anew with the new set. */
  readonly live: boolean;
  subscribe(pattern: string, w: Wanted): void;
  unsubscribe(pattern: string): void;
  /** A request answered by the frame carrying its `ref` (WebSocket only). */
  request(frame: ClientFrame): Promise<ServerFrame>;
  close(): void;
}

/** `http(s)://host` from what the app gave (a trailing slash, or a ws:// URL, is fine). */
export function httpBase(url: string): string {
  return url.replace(/^ws/, 'http').replace(/\/+$/, '');
}

export function bearer(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}
