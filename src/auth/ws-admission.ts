import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { HeraldError } from '../core/errors.js';
import { RateLimitedError } from '../limits/limits.js';
import { subscriberCredential } from './authenticator.js';
import type { Security } from './security.js';
import { WsSession } from './ws-session.js';

/**
 * Admits a WebSocket upgrade before the handshake completes: the Origin check (cross-site
 * WebSocket hijacking: browsers send cookies with a cross-origin upgrade, and CORS does not apply
 * to WebSockets), the credential (Authorization header, `token` query parameter, or cookie), the
 * seed route's channel permission, and the connection limits. Resolves to the connection's
 * session, or throws a HeraldError for `rejectUpgrade`.
 *
 * `channels` are the channels the route subscribes on its own (the seed `/ws`); `/v1/ws` checks
 * each `subscribe` op instead.
 */
export async function admitUpgrade(security: Security, req: IncomingMessage, channels: readonly string[]): Promise<WsSession> {
  const origin = req.headers.origin;
  if (!security.originAllowed(origin, req.headers.host)) {
    const err = new HeraldError('ORIGIN_FORBIDDEN', `origin ${origin!.slice(0, 256)} is not in cors.origins`);
    security.denied(req, err);
    throw err;
  }
  // A cookie is a browser's ambient credential: honour it only from an origin that was named in
  // cors.origins or is Herald's own, never merely because cors.origins is `*`.
  const cookieOk = origin === undefined || security.config.cors.origins.includes(origin) || sameOrigin(origin, req.headers.host);
  const url = new URL(req.url ?? '/', 'http://herald.invalid');
  const credential = subscriberCredential(req.headers, url.searchParams, security.config.auth.cookieName, cookieOk);
  const { principal, address, lease } = await security.admit(req, credential, channels);
  return new WsSession({ security, principal, address, lease, budget: security.limits.messageBudget(address) });
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

/** Answers a refused upgrade with the error's status and the usual JSON body, then closes. */
export function rejectUpgrade(socket: Duplex, err: unknown): void {
  const e = err instanceof HeraldError ? err : new HeraldError('INTERNAL');
  const body = JSON.stringify({ error: e.toJSON() });
  const retry = e instanceof RateLimitedError ? `Retry-After: ${e.retryAfterSeconds}\r\n` : '';
  const auth = e.status === 401 ? 'WWW-Authenticate: Bearer realm="herald"\r\n' : '';
  if (!socket.writable) return void socket.destroy();
  socket.end(
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}\r\n` +
      `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `${retry}${auth}Connection: close\r\n\r\n${body}`,
  );
}
