import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { EventEmitter } from 'node:events';

/*
 * Herald's streaming code takes node:http's request and response. Over HTTP/2 (with `tls`:
 * src/http/tls.ts) fastify hands it node's compatibility objects instead (Http2ServerRequest,
 * Http2ServerResponse), which differ where a stream reaches below the API a route uses: the
 * response has no `destroyed`, the request's headers cannot be replaced, the host is in
 * `:authority`, and the bytes of one response are carried by its HTTP/2 stream, not by the
 * connection's socket, which many responses share.
 */

/** True when the request came over HTTP/2. */
export function isHttp2(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 2;
}

/**
 * The host the client asked for: `Host` on HTTP/1.1, `:authority` on HTTP/2, where browsers send
 * no `Host` (RFC 9113 8.3.1: `:authority` replaces it).
 */
export function requestHost(req: IncomingMessage): string | undefined {
  if (isHttp2(req)) {
    const authority = req.headers[':authority'];
    if (typeof authority === 'string') return authority;
  }
  return req.headers.host;
}

/** What carries one response's bytes: emits 'drain' and 'close'; `writableLength` is its backlog. */
export type ResponseCarrier = EventEmitter & { writableLength: number; destroyed?: boolean };

/**
 * The response's own carrier: its HTTP/2 stream (flow-controlled per stream: one slow reader
 * does not stand for the connection's other streams), else its socket, else the response.
 */
export function responseCarrier(res: ServerResponse): ResponseCarrier {
  return (res as unknown as Partial<Http2ServerResponse>).stream ?? res.socket ?? res;
}

/** True once nothing more can be written to the response: the client left, or it was destroyed. */
export function responseGone(res: ServerResponse): boolean {
  const stream = (res as unknown as Partial<Http2ServerResponse>).stream;
  return stream ? stream.destroyed : res.destroyed;
}
