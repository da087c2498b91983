import type { FastifyRequest } from 'fastify';
import { clientAddress } from './client-address.js';
import { checkLocalCaller } from './local-api.js';

/**
 * Who may call the publish and operator APIs. With no credentials configured (dev mode) only
 * clients on this machine may, asking for it by a loopback name, from no web page but Herald's
 * own or one named in cors.origins (src/http/local-api.ts): a gateway reachable from a network
 * must never accept anonymous publishes. Subscriptions and the seed routes stay open, as in the
 * original example. With API
 * keys or JWT configured, src/auth/security.ts implements it (`Authorization: Bearer` only, so a
 * browser's cookie can never publish: no CSRF). Every check is synchronous: the credentials were
 * resolved by an onRequest hook.
 */
export interface Guard {
  readonly devMode: boolean;
  /**
   * Throws unless the request may publish to `channel`; without `channel`, unless it may publish
   * at all (call it first, before reading the body, then once per event's channel).
   */
  publisher(req: FastifyRequest, channel?: string): void;
  /** Throws unless the request may read `pattern` (history); dev mode: everyone may. */
  subscriber(req: FastifyRequest, pattern: string): void;
  /** Counts one history read against its key's rate (`limits.historyPerSecond`); throws 429 past it. */
  history(req: FastifyRequest): void;
  /** Throws unless the request may use operator APIs (endpoints, inbound logs, replays). */
  operator(req: FastifyRequest): void;
}

export function devModeGuard(): Guard {
  const loopbackOnly = (req: FastifyRequest) => checkLocalCaller(req.raw, clientAddress(req), []);
  return { devMode: true, publisher: loopbackOnly, operator: loopbackOnly, subscriber: () => {}, history: () => {} };
}
