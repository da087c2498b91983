import { dataText, ephemeralJsonText, eventJsonText, type EphemeralEvent, type StoredEvent } from '../../core/event.js';
import { SSE_EVENT, type ResetReason, type SseResetData } from '../../core/protocol.js';

/**
 * Server-Sent Events framing (WHATWG HTML, "Server-sent events", 9.2.6). `id` and `event` values
 * are validated at the trust line never to hold CR, LF or NUL; `data` is split on every line
 * break the parser knows (CRLF, CR, LF) into one `data:` line each, so the client gets the text
 * back with LF line breaks and nothing can inject a field.
 */

const LINE_BREAK = /\r\n|\r|\n/;

function dataLines(text: string): string {
  if (!text.includes('\n') && !text.includes('\r')) return `data: ${text}\n`;
  let out = '';
  for (const line of text.split(LINE_BREAK)) out += `data: ${line}\n`;
  return out;
}

/** The frame for `/v1/stream`: id, event type and data. Made once per event. */
export function typedFrame(e: StoredEvent): Buffer {
  let f = e.encoded.sse;
  if (f === undefined) {
    f = e.encoded.sse = Buffer.from(`id: ${e.id}\nevent: ${e.type}\n${dataLines(dataText(e))}\n`);
  }
  return f;
}

/**
 * The frame for `/v1/stream?format=json`: `data:` is the whole event as JSON (`id`, `channel`,
 * `type`, `data`, `time`, as in a WebSocket event frame without its `op`), so a client on a
 * stream of several channels or a pattern knows each event's channel, and a string value stays
 * distinguishable from JSON text. JSON text holds no raw line break, so it is one `data:` line.
 */
export function jsonFrame(e: StoredEvent): Buffer {
  let f = e.encoded.sse_json;
  if (f === undefined) f = e.encoded.sse_json = Buffer.from(`id: ${e.id}\nevent: ${e.type}\ndata: ${eventJsonText(e)}\n\n`);
  return f;
}

/**
 * An ephemeral event on `/v1/stream` (text): no `id:` line, so the browser's Last-Event-ID, and
 * with it the resume position, stays on the last logged event.
 */
export function typedEphemeralFrame(e: EphemeralEvent): Buffer {
  let f = e.encoded.sse;
  if (f === undefined) f = e.encoded.sse = Buffer.from(`event: ${e.type}\n${dataLines(dataText(e))}\n`);
  return f;
}

/** An ephemeral event on `/v1/stream?format=json`: no `id:` line; `data:` has `"ephemeral":true`. */
export function jsonEphemeralFrame(e: EphemeralEvent): Buffer {
  let f = e.encoded.sse_json;
  if (f === undefined) f = e.encoded.sse_json = Buffer.from(`event: ${e.type}\ndata: ${ephemeralJsonText(e)}\n\n`);
  return f;
}

/**
 * The frame for the seed route `GET /sse`: no `event:` field, so the seed page's `onmessage`
 * sees every event, but still an `id:` so a reconnecting browser resumes without a gap.
 */
export function plainFrame(e: StoredEvent): Buffer {
  let f = e.encoded.sse_plain;
  if (f === undefined) f = e.encoded.sse_plain = Buffer.from(`id: ${e.id}\n${dataLines(dataText(e))}\n`);
  return f;
}

/** The name of the event that tells a client its resume position is gone. */
export const RESET_EVENT = SSE_EVENT.RESET;

export function resetFrame(reason: ResetReason, headId: string): Buffer {
  const data = JSON.stringify({ reason, lastEventId: headId } satisfies SseResetData);
  return Buffer.from(`id: ${headId}\nevent: ${RESET_EVENT}\ndata: ${data}\n\n`);
}

export function preamble(retryMs: number): Buffer {
  return Buffer.from(`retry: ${retryMs}\n: connected\n\n`);
}

export const HEARTBEAT = Buffer.from(': heartbeat\n\n');
