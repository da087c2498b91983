import type { FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { isPattern } from '../core/channel.js';
import { responseGone } from '../transports/http2-compat.js';
import type { StreamAdmission, StreamGuard } from '../http/guard.js';
import type { PresenceChange } from '../core/presence.js';
import { subscriberCredential } from './authenticator.js';
import { SSE_EVENT, type SseErrorData, type SsePresenceData } from '../core/protocol.js';
import type { Security } from './security.js';
import type { ConnectionLease } from '../limits/limits.js';

/** The longest a timer can wait (2^31-1 ms, about 24.8 days); longer expiries re-arm. */
export const MAX_TIMER_MS = 2_147_483_647;

/** SSE event names for what is not a log event: no `id:` line, so resume positions are untouched. */
export const SSE_JOIN_EVENT = SSE_EVENT.JOIN;
export const SSE_LEAVE_EVENT = SSE_EVENT.LEAVE;
export const SSE_ERROR_EVENT = SSE_EVENT.ERROR;

/** A presence frame is dropped rather than queued past this backlog: the stream is slow anyway. */
const PRESENCE_FRAME_MAX_BACKLOG_BYTES = 65_536;

function truthy(v: unknown): boolean {
  const s = Array.isArray(v) ? v[v.length - 1] : v;
  return s === '' || s === '1' || s === 'true';
}

/**
 * Runs a subscriber's checks before an SSE stream starts (`GET /v1/stream`, `GET /sse`): the
 * credential (Authorization header, `token` query parameter, or cookie), each channel's
 * permission, and the connection limits. Refusals are ordinary JSON errors (401, 403, 429) sent
 * before the stream opens. Once open, the stream ends with a `herald.error` event when its token
 * expires, and with `?presence=true` it also gets `herald.join` / `herald.leave` events.
 */
export class StreamGate implements StreamGuard {
  readonly #security: Security;

  constructor(security: Security) {
    this.#security = security;
  }

  async admit(req: FastifyRequest, res: ServerResponse, patterns: readonly string[]): Promise<StreamAdmission> {
    const s = this.#security;
    const query = (req.query ?? {}) as Record<string, unknown>;
    const credential = subscriberCredential(req.headers, query, s.config.auth.cookieName);
    // The close listener goes on before the credential check awaits: a client that resets its
    // socket while it is being admitted (or before the handler ran at all) must still give back
    // its place, or one valid token can lock its identity out with 429 until a restart.
    const hold = new StreamHold(responseGone(res));
    res.on('close', hold.end);
    let admission: Awaited<ReturnType<Security['admit']>>;
    try {
      admission = await s.admit(req.raw, credential, patterns);
    } catch (err) {
      res.off('close', hold.end);
      throw err;
    }
    const { principal, lease, address } = admission;
    hold.lease = lease;
    if (hold.ended || responseGone(res)) {
      hold.end();
      return { opened: () => {} };
    }
    // Membership counts from admission: a subscriber is present while its stream is. A channel
    // that does not track presence has nothing to give back (its `join` is a no-op).
    for (const p of patterns) if (!isPattern(p) && s.presence.enabled(p)) hold.add(s.presence.join(p, principal.identity));
    const wantsPresence = truthy(query.presence);
    return {
      identity: principal.identity,
      address,
      opened: () => {
        if (hold.ended) return;
        if (wantsPresence) {
          const write = (c: PresenceChange) => {
            if (res.writableLength > PRESENCE_FRAME_MAX_BACKLOG_BYTES) return;
            const name = c.kind === 'join' ? SSE_JOIN_EVENT : SSE_LEAVE_EVENT;
            res.write(`event: ${name}\ndata: ${JSON.stringify({ channel: c.channel, identity: c.identity } satisfies SsePresenceData)}\n\n`);
          };
          for (const p of patterns) if (!isPattern(p) && s.presence.enabled(p)) hold.add(s.presence.watch(p, write));
        }
        if (principal.expiresAt !== undefined) {
          let timer: NodeJS.Timeout;
          const arm = () => {
            const left = principal.expiresAt! - Date.now();
            if (left > MAX_TIMER_MS) {
              timer = setTimeout(arm, MAX_TIMER_MS).unref();
              return;
            }
            timer = setTimeout(() => {
              // The stream ends: an EventSource reconnects with the same (expired) URL and gets a
              // 401, so the page knows to fetch a fresh token.
              res.end(`event: ${SSE_ERROR_EVENT}\ndata: ${JSON.stringify({ code: 'TOKEN_EXPIRED', message: 'the token has expired' } satisfies SseErrorData)}\n\n`);
            }, Math.max(0, left)).unref();
          };
          arm();
          hold.add(() => clearTimeout(timer));
        }
      },
    };
  }
}

/**
 * What an admitted stream gives back when its response closes: its connection lease, then its
 * presence memberships, watchers and expiry timer, each once. One object per stream and its
 * 'close' listener; the list is made at the first entry (most streams have none).
 */
class StreamHold {
  ended: boolean;
  lease: ConnectionLease | undefined;
  #cleanups: Array<() => void> | undefined;

  constructor(ended: boolean) {
    this.ended = ended;
  }

  add(cleanup: () => void): void {
    (this.#cleanups ??= []).push(cleanup);
  }

  /** The response's 'close' listener. */
  readonly end = (): void => {
    this.ended = true;
    const lease = this.lease;
    this.lease = undefined;
    lease?.release();
    const cleanups = this.#cleanups;
    this.#cleanups = undefined;
    if (cleanups) for (const c of cleanups) c();
  };
}
