/**
 * The few platform APIs the SDK uses, typed by their shape, so the package builds without the
 * DOM or Node type libraries and runs where they exist: browsers, and Node 20 (whose WebSocket
 * comes from the `ws` package through the `WebSocket` option).
 */

export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ResponseLike {
  readonly status: number;
  readonly body: { getReader(): StreamReader } | null;
  json(): Promise<unknown>;
}

export interface StreamReader {
  read(): Promise<{ done: boolean; value?: Uint8Array }>;
  cancel(): Promise<void>;
}

export type FetchLike = (
  url: string,
  init?: { method?: string; headers?: Record<string, string>; body?: string; signal?: unknown },
) => Promise<ResponseLike>;

export interface BroadcastChannelLike {
  postMessage(message: unknown): void;
  close(): void;
  onmessage: ((ev: { data: unknown }) => void) | null;
}

interface LockManagerLike {
  request(name: string, callback: () => Promise<void>): Promise<void>;
}

interface Platform {
  WebSocket?: WebSocketConstructor;
  fetch: FetchLike;
  AbortController: new () => { readonly signal: unknown; abort(): void };
  TextDecoder: new () => { decode(input?: Uint8Array, options?: { stream: boolean }): string };
  BroadcastChannel?: new (name: string) => BroadcastChannelLike;
  navigator?: { locks?: LockManagerLike };
  /** Present in a browser page: tabs exist only there. */
  document?: unknown;
  addEventListener?: (type: string, listener: () => void) => void;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
  atob(text: string): string;
}

export const platform = globalThis as unknown as Platform;

/** A timer handle, whatever the platform's type for it. */
export type Timer = unknown;

export function later(fn: () => void, ms: number): Timer {
  return platform.setTimeout(fn, ms);
}

export function cancel(t: Timer): void {
  if (t !== undefined) platform.clearTimeout(t);
}
