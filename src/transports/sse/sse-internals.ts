import type { IncomingMessage, ServerResponse } from 'node:http';
import { isHttp2 } from '../http2-compat.js';

/*
 * The one place the SSE transport reaches into library privates (node:http's `_header` and
 * `_headerSent`, fastify's response listener by its function name), to keep an open stream's
 * memory small. Each use degrades to doing nothing when the private is not what it expects;
 * test/hardening/library-internals-are-where-herald-expects.test.ts checks them on real instances,
 * so an upgrade that changes one fails there instead of silently growing every stream.
 */

/** What `_header` holds once the head is out: node only tests it for truth from then on. */
export const HEAD_SENT = 'HTTP/1.1 (head sent)\r\n\r\n';
const NO_RAW_HEADERS: string[] = [];

/**
 * Lets go of what an open stream no longer needs from node:http, which would otherwise be kept
 * for the connection's lifetime (hours, for an SSE stream):
 * - the response head (`_header`), some 350 bytes of text per stream for a typical head. Once
 *   the first write has carried it out (`_headerSent`), node reads `_header` only as a flag
 *   ("headers sent"; `writeHead` refuses, `end` frames no new head), so a shared string stands in;
 * - the request headers (`rawHeaders` and the parsed `headers`), read once while opening: with
 *   a browser's dozen headers and cookies, often more than a kilobyte per stream;
 * - fastify's response listener (see FASTIFY_RESPONSE_LISTENER).
 */
export function releaseOpeningState(req: IncomingMessage, res: ServerResponse): void {
  const r = res as unknown as { _header?: unknown; _headerSent?: boolean };
  if (r._headerSent === true && typeof r._header === 'string') r._header = HEAD_SENT;
  // Over HTTP/2 the request's headers are getters only (Http2ServerRequest): they stay.
  if (!isHttp2(req)) {
    req.rawHeaders = NO_RAW_HEADERS;
    req.headers = {};
  }
  for (const ev of ['finish', 'error'] as const) {
    for (const l of res.listeners(ev)) if ((l as { name?: string }).name === FASTIFY_RESPONSE_LISTENER) res.removeListener(ev, l as () => void);
  }
}

/**
 * The listener fastify puts on every response ('finish' and 'error') to run `onResponse` hooks
 * and log the completed request. Herald registers no `onResponse` hook and logs no requests
 * (src/app.ts), so on a stream it does nothing but keep fastify's request and reply objects (and
 * the parsed query) for the stream's lifetime: ~0.6 KiB of RSS per stream, measured. An
 * `onResponse` hook added to the app would not run for SSE streams. Should fastify rename the
 * listener, nothing is removed and nothing breaks.
 */
export const FASTIFY_RESPONSE_LISTENER = 'onResFinished';
