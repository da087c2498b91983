import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { Config } from '../config/schema.js';
import { HeraldError } from '../core/errors.js';
import { isLoopback } from './client-address.js';
import { requestHost } from '../transports/http2-compat.js';

/**
 * The publish and operator APIs: `POST /v1/publish`, `/v1/endpoints…`, `/v1/deliveries…`, the
 * dev-mode token route (`POST /v1/dev/token`), the
 * inbound log and its replays (`/v1/webhooks/{source}/received…`) and the demo's test webhook.
 * With no auth configured they answer only this machine (Guard), and this module keeps a web page
 * open on this machine from using them: the caller's address is loopback there too, so the
 * browser is the one to stop. Inbound provider webhooks (`POST /v1/webhooks/{source}`) are not
 * in this set: providers send what they send, and a signature, not the network, vouches for them.
 */
export const LOCAL_API_PATH =
  /^\/(?:v1\/(?:publish|endpoints|deliveries|dev\/token)(?:[/?]|$)|v1\/webhooks\/[^/?]+\/received(?:[/?]|$)|demo\/orders\/test-webhook(?:\?|$))/;

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * onRequest hook: the publish and operator APIs take only `Content-Type: application/json`
 * (415 UNSUPPORTED_MEDIA_TYPE otherwise, before the body is read). A cross-origin page can send
 * `text/plain`, form or multipart bodies without a CORS preflight ("simple requests", Fetch
 * standard 3.2.3), so accepting them would let any page publish or create an endpoint; JSON
 * needs a preflight, which CORS then refuses. A body-less request without a Content-Type
 * (`curl -X POST …/rotate-secret`) still passes: the Origin check of the guard covers it.
 */
export function requireJsonBody(req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void {
  if (!BODY_METHODS.has(req.method) || !LOCAL_API_PATH.test(req.url)) return done();
  const type = req.headers['content-type'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
  if (type === undefined && !hasBody) return done();
  const media = (type ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (media === 'application/json') return done();
  done(new HeraldError('UNSUPPORTED_MEDIA_TYPE', `this API takes Content-Type: application/json, not ${type === undefined ? 'none' : JSON.stringify(type.slice(0, 100))}`));
}

/**
 * True when a `Host` header names this machine: `localhost`, `*.localhost` (RFC 6761 6.3: these
 * never leave the machine), an address in 127.0.0.0/8 or `[::1]`, with or without a port.
 * Anything else reaching a loopback socket is a DNS rebinding attack (a name the attacker
 * controls, re-pointed at 127.0.0.1 so that the browser treats Herald as the attacker's origin)
 * or a misrouted request.
 */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+))(?::\d{1,5})?$/.exec(host);
  if (!m) return false;
  if (m[1] !== undefined) return isIP(m[1]) === 6 && isLoopback(m[1].toLowerCase());
  const name = m[2]!.toLowerCase();
  return name === 'localhost' || name.endsWith('.localhost') || (isIP(name) === 4 && isLoopback(name));
}

/** True when `origin` is the origin Herald was reached at (scheme aside: Herald speaks HTTP). */
export function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

/**
 * Dev mode's check of a publish or operator request, in order: the caller is on this machine
 * (403 LOOPBACK_ONLY), it asked for this machine by name (403 HOST_FORBIDDEN: DNS rebinding), and
 * a browser sent it from Herald's own origin or one named in `cors.origins` (403
 * ORIGIN_FORBIDDEN: a page on another origin, which could otherwise trigger a side effect even
 * when CORS keeps it from reading the answer). A `*` in `cors.origins` does not count here: with
 * no credentials the network position is the credential, and every page on the machine has it.
 */
export function checkLocalCaller(req: IncomingMessage, address: string | undefined, corsOrigins: readonly string[]): void {
  if (!isLoopback(address)) throw new HeraldError('LOOPBACK_ONLY');
  const host = requestHost(req);
  if (!isLoopbackHost(host)) {
    throw new HeraldError(
      'HOST_FORBIDDEN',
      `with no auth configured this API answers requests for localhost or a loopback address only, not Host ${JSON.stringify((host ?? '').slice(0, 100))}`,
    );
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !corsOrigins.includes(origin) && !sameOrigin(origin, host)) {
    throw new HeraldError(
      'ORIGIN_FORBIDDEN',
      `with no auth configured this API answers pages of Herald's own origin or one named in cors.origins, not ${origin.slice(0, 100)}`,
    );
  }
}

/** The headers every cross-origin reader may see (one string, shared by every response). */
const EXPOSED_HEADERS = 'idempotent-replayed, herald-event-id, retry-after';

/**
 * The @fastify/cors options. With credentials configured, `cors.origins` applies to every route
 * (the publish and operator APIs need an Authorization header, which a page must hold; it is not
 * ambient). In dev mode the publish and operator APIs answer cross-origin reads and preflights
 * only for origins named in `cors.origins`, never for `*`: with `*`, any page on the machine could
 * read what they answer, an endpoint's secret included.
 */
export function corsOptions(config: Config, devMode: boolean) {
  const origins = config.cors.origins;
  const any = origins.includes('*');
  const open = { origin: any ? '*' : [...origins], credentials: !any, exposedHeaders: EXPOSED_HEADERS };
  if (!devMode) return open;
  const named = origins.filter((o) => o !== '*');
  const local = named.length === 0 ? { origin: false } : { origin: named, credentials: true, exposedHeaders: EXPOSED_HEADERS };
  return {
    delegator: (req: FastifyRequest, cb: (err: Error | null, options: object) => void) =>
      cb(null, LOCAL_API_PATH.test(req.url) ? local : open),
  };
}
