import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import { waitFor } from './herald.js';

export interface SseMessage {
  type: string;
  data: string;
  lastEventId: string;
}

/** An `eventsource` package client that records every message of the given event types. */
export function openEventSource(url: string, types: string[] = ['message'], headers: Record<string, string> = {}) {
  const messages: SseMessage[] = [];
  let opens = 0;
  const source = new EventSource(url, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string>), ...headers } }),
  });
  source.addEventListener('open', () => opens++);
  for (const type of types) {
    source.addEventListener(type, (e) => messages.push({ type, data: e.data, lastEventId: e.lastEventId }));
  }
  return {
    source,
    messages,
    get opens() {
      return opens;
    },
    until: (n: number, ms = 5_000) => waitFor(() => messages.length >= n, ms, `${n} SSE messages (have ${messages.length})`),
    close: () => source.close(),
  };
}

export type Frame = Record<string, any>;

/** A `ws` client for the JSON protocol that records every frame it receives. */
export async function openWs(url: string) {
  const ws = new WebSocket(url);
  const frames: Frame[] = [];
  const texts: string[] = [];
  let closed: { code: number; reason: string } | undefined;
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? '' : data.toString();
    texts.push(text);
    try {
      frames.push(JSON.parse(text) as Frame);
    } catch {
      /* plain-text frames (seed /ws) are in texts */
    }
  });
  ws.on('close', (code, reason) => (closed = { code, reason: reason.toString() }));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    frames,
    texts,
    get closed() {
      return closed;
    },
    send: (frame: unknown) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
    /** Waits for the first frame (from `from` on) that satisfies `pred`. */
    next: (pred: (f: Frame) => boolean, ms = 5_000): Promise<Frame> =>
      waitFor(() => frames.find(pred), ms, 'a matching WebSocket frame') as Promise<Frame>,
    events: () => frames.filter((f) => f.op === 'event'),
    closedWith: (ms = 5_000) =>
      waitFor(() => closed, ms, 'the socket to close') as Promise<{ code: number; reason: string }>,
    close: () => ws.close(),
  };
}
