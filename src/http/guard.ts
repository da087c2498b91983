import type { FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';

/**
 * Who may call the publish and operator APIs. With no credentials configured (dev mode) only
 * clients on this machine may, asking for it by a loopback name, from no web page but Herald's
 * own or one named in cors.origins (src/http/local-api.ts): a gateway reachable from a network
 * must never accept anonymous publishes. Subscriptions and the seed routes stay open, as in the
 * original example. With API keys or JWT configured, only `Authorization: Bearer` counts, so a
 * browser's cookie can never publish: no CSRF. src/auth/security.ts implements it in both modes. Every check is synchronous: the credentials were
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

/** An SSE stream let in: call `opened()` once the stream's headers are out. */
export interface StreamAdmission {
  opened(): void;
  /** Who was let in (undefined: anonymous) and from where, for the operator's connection list. */
  readonly identity?: string | undefined;
  readonly address?: string | undefined;
}

/**
 * Who may open an SSE stream (`GET /v1/stream`, `GET /sse`): credentials, each channel's
 * permission and the connection limits, checked before the stream starts (src/auth/stream-gate.ts
 * implements it). Rejects with the HeraldError to answer.
 */
export interface StreamGuard {
  admit(req: FastifyRequest, res: ServerResponse, patterns: readonly string[]): Promise<StreamAdmission>;
}
