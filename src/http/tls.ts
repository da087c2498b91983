import { readFileSync } from 'node:fs';
import type { Http2SecureServer, Http2Session } from 'node:http2';
import { createSecureContext } from 'node:tls';
import type { Config } from '../config/schema.js';
import { StartupError } from '../core/errors.js';
import { http1Limits } from './server-options.js';

/** milliseconds an idle HTTP/1.1 keep-alive connection stays open (fastify's default for plain HTTP). */
export const HTTP1_KEEP_ALIVE_TIMEOUT_MS = 72_000;

/** The certificate chain and private key of `tls`, as PEM bytes. */
export interface TlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
}

function readPem(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new StartupError(`cannot read ${key} (${path}): ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Reads `tls.cert` and `tls.key` and checks that node can serve with them (PEM it can parse, a
 * key that belongs to the certificate). A problem is a StartupError naming the key and the file:
 * found now, not at the first client's handshake.
 */
export function readTlsFiles(tls: { readonly cert: string; readonly key: string }): TlsFiles {
  const cert = readPem(tls.cert, 'tls.cert');
  const key = readPem(tls.key, 'tls.key');
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new StartupError(`cannot use tls.cert (${tls.cert}) with tls.key (${tls.key}): ${(err as Error).message}`, { cause: err });
  }
  return { cert, key };
}

/**
 * The fastify options for HTTPS on one port: HTTP/2 for clients that offer it in ALPN (RFC 7301;
 * every browser does, so a page's SSE streams share one connection instead of taking six of the
 * browser's HTTP/1.1 connections each), HTTP/1.1 for the others (`allowHTTP1`: curl without
 * --http2, older clients, and every WebSocket, which upgrades over HTTP/1.1: Herald does not
 * announce RFC 8441's extended CONNECT, so browsers open a separate HTTP/1.1 connection for it).
 */
export function secureServerOptions(config: Config, files: TlsFiles) {
  return {
    http2: true as const,
    https: {
      allowHTTP1: true,
      cert: files.cert,
      key: files.key,
      // The same bound on a request's headers as HTTP/1.1's `maxHeaderSize` (RFC 9113 6.5.2).
      settings: { maxHeaderListSize: config.limits.maxHeaderBytes },
      // A client that opens connections and never finishes the handshake holds each one only as
      // long as a slow client may take to send its headers (node's default: 120 s).
      handshakeTimeout: config.limits.headersTimeoutSeconds * 1000,
    },
  };
}

/**
 * Applies the limits of plain HTTP (src/http/server-options.ts) to the HTTP/1.1 connections of
 * the secure server, which fastify configures only for its HTTP/1.1 servers, and returns a
 * function that closes every HTTP/2 session gracefully (GOAWAY: open streams finish, no new ones
 * start). On Node 20 `server.close()` waits for sessions without closing them, so a browser's
 * idle connection would hold a shutdown until the session timeout.
 */
export function configureSecureServer(server: Http2SecureServer, config: Config): () => void {
  const limits = http1Limits(config);
  // Read by node's HTTP/1.1 connection handling, which the secure server runs for HTTP/1.1 clients.
  Object.assign(server, {
    maxHeaderSize: limits.maxHeaderSize,
    headersTimeout: limits.headersTimeout,
    requestTimeout: limits.requestTimeout,
    connectionsCheckingInterval: limits.connectionsCheckingInterval,
    keepAliveTimeout: HTTP1_KEEP_ALIVE_TIMEOUT_MS,
  });
  const sessions = new Set<Http2Session>();
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  return () => {
    for (const s of sessions) if (!s.closed && !s.destroyed) s.close();
  };
}
