import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from '../config/schema.js';
import { HeraldError, type ErrorCode } from '../core/errors.js';

/** How often node checks open requests against the header and request timeouts. */
export const TIMEOUT_CHECK_INTERVAL_MS = 1_000;

/**
 * The HTTP server's own limits, for the fastify constructor: the largest request head (431 past
 * it), and how long a client may take to send its headers and its request (a slow-loris client
 * dribbling a half-sent request holds a socket only this long, then gets 408). Streams are not
 * affected: the timeouts end when the request is received, not when the response ends.
 */
export function serverOptions(config: Config) {
  const http = http1Limits(config);
  return { http, requestTimeout: http.requestTimeout, clientErrorHandler };
}

/** node:http's server options for the limits above (also applied to HTTPS: src/http/tls.ts). */
export function http1Limits(config: Config) {
  const headersTimeout = config.limits.headersTimeoutSeconds * 1000;
  const requestTimeout = Math.max(headersTimeout, config.limits.requestTimeoutSeconds * 1000);
  return {
    maxHeaderSize: config.limits.maxHeaderBytes,
    headersTimeout,
    requestTimeout,
    connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_INTERVAL_MS, headersTimeout),
  };
}

/**
 * Answers what node's HTTP parser refused before any route ran, with the registry's error shape
 * (fastify's default answers in a shape of its own).
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let code: ErrorCode = 'BAD_REQUEST';
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') code = 'REQUEST_TIMEOUT';
  else if (err.code === 'HPE_HEADER_OVERFLOW') code = 'HEADERS_TOO_LARGE';
  const e = new HeraldError(code);
  const body = JSON.stringify({ error: e.toJSON() });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}
