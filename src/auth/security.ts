import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Config } from '../config/schema.js';
import { HeraldError } from '../core/errors.js';
import { forwardedClientAddress } from '../http/client-address.js';
import type { Guard } from '../http/guard.js';
import { checkLocalCaller, sameOrigin } from '../http/local-api.js';
import { Limits, type ConnectionLease } from '../limits/limits.js';
import type { Logger } from '../observability/logger.js';
import type { PresenceStore } from '../core/presence.js';
import { PresenceRegistry } from '../presence/presence-registry.js';
import { Authenticator, bearerToken, type Credential } from './authenticator.js';
import { ANONYMOUS, maySubscribe, mayPublish, type Principal } from './permissions.js';

/**
 * Inbound provider webhooks (`POST /v1/webhooks/{source}`): authenticated by their signatures,
 * never by keys, and limited by `webhooksPerSecond` per client address.
 */
export const INBOUND_WEBHOOK_PATH = /^\/v1\/webhooks\/[^/?]+(?:\?|$)/;

/** What the onRequest hook learnt from a request's Authorization header. */
type Resolved = { principal: Principal; charged: boolean } | { error: HeraldError };

/** A subscriber admitted to open a long-lived connection. */
export interface Admission {
  readonly principal: Principal;
  readonly address: string | undefined;
  readonly lease: ConnectionLease;
}

/**
 * Who may do what, for every transport: authentication (API keys, JWT), channel permissions,
 * dev mode, rate and connection limits, and presence. `createHerald` makes one and hands its
 * parts to the routes and transports; permission checks happen when a request arrives or a
 * subscription starts, never per delivered event.
 */
export class Security {
  readonly config: Config;
  readonly authenticator: Authenticator;
  readonly limits: Limits;
  readonly presence: PresenceStore;
  readonly guard: Guard;
  readonly #log: Logger;
  readonly #resolved = new WeakMap<IncomingMessage, Resolved>();

  /**
   * `presence`: the backend set's presence store (src/stores/backend.ts); without one (a test of
   * permissions alone), an in-process registry made from `config.presence`.
   */
  constructor(config: Config, log: Logger, now: () => number = Date.now, presence?: PresenceStore) {
    this.config = config;
    this.#log = log;
    this.authenticator = new Authenticator(config.auth);
    this.limits = new Limits(config.limits, now);
    this.presence =
      presence ??
      new PresenceRegistry({
        patterns: config.presence.channels,
        leaveDelayMs: config.presence.leaveDelaySeconds * 1000,
      });
    this.guard = {
      devMode: this.devMode,
      publisher: (req, channel) => this.#publisher(req, channel),
      operator: (req) => this.#operator(req),
      history: (req) => this.#history(req),
      subscriber: (req, pattern) => {
        try {
          this.authorizeSubscribe(this.principalOf(req), pattern, 'header');
        } catch (err) {
          if (err instanceof HeraldError) this.denied(req.raw, err);
          throw err;
        }
      },
    };
  }

  /** No API keys and no JWT configured: publish and operator APIs answer loopback clients only. */
  get devMode(): boolean {
    return !this.authenticator.configured;
  }

  /** The client's address, with `trustProxy` applied. */
  addressOf(req: IncomingMessage): string | undefined {
    return forwardedClientAddress(req, this.config.trustProxy);
  }

  /**
   * The fastify `onRequest` hook: resolves the Authorization header once per request (so the
   * guard's checks stay synchronous) and applies the inbound webhook rate.
   */
  readonly onRequest = (req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
    // Callback style: a request without a credential costs no promise (the publish hot path).
    if (req.method === 'POST' && INBOUND_WEBHOOK_PATH.test(req.url)) {
      try {
        this.limits.webhook(this.addressOf(req.raw));
      } catch (err) {
        return done(err as Error);
      }
    }
    if (this.devMode) return done();
    const token = bearerToken(req.headers);
    if (token === undefined) return done();
    this.authenticator.authenticate(token).then(
      (principal) => {
        this.#resolved.set(req.raw, { principal, charged: false });
        done();
      },
      (err: unknown) => {
        this.#resolved.set(req.raw, { error: err instanceof HeraldError ? err : new HeraldError('UNAUTHORIZED') });
        done();
      },
    );
  };

  /** The principal of an HTTP request's Authorization header (throws when it was invalid). */
  principalOf(req: FastifyRequest): Principal {
    const r = this.#resolved.get(req.raw);
    if (r === undefined) return ANONYMOUS;
    if ('error' in r) {
      this.denied(req.raw, r.error);
      throw r.error;
    }
    return r.principal;
  }

  /** Logs a refusal: the code and where from, never the credential. */
  denied(req: IncomingMessage, err: HeraldError): void {
    this.logDenied((req.url ?? '').split('?')[0]!, this.addressOf(req), err);
  }

  logDenied(path: string, address: string | undefined, err: HeraldError): void {
    this.#log.info({ code: err.code, status: err.status, path, address }, 'request refused');
  }

  #publisher(req: FastifyRequest, channel: string | undefined): void {
    const address = this.addressOf(req.raw);
    if (this.devMode) {
      checkLocalCaller(req.raw, address, this.config.cors.origins);
      this.#charge(req, `ip:${address}`, address);
      return;
    }
    const p = this.principalOf(req);
    if (p.kind === 'anonymous') {
      throw this.#refuse(req, new HeraldError('UNAUTHORIZED', 'send Authorization: Bearer <API key or token>'));
    }
    if (channel === undefined ? !p.admin && p.publish.length === 0 : !mayPublish(p, channel)) {
      throw this.#refuse(
        req,
        new HeraldError('PUBLISH_FORBIDDEN', channel === undefined ? 'these credentials may not publish' : `these credentials may not publish to ${channel}`),
      );
    }
    this.#charge(req, p.identity ?? `ip:${address}`, address);
  }

  #operator(req: FastifyRequest): void {
    if (this.devMode) {
      checkLocalCaller(req.raw, this.addressOf(req.raw), this.config.cors.origins);
      return;
    }
    const p = this.principalOf(req);
    if (p.kind === 'anonymous') throw this.#refuse(req, new HeraldError('UNAUTHORIZED', 'send Authorization: Bearer <API key>'));
    if (!p.admin) throw this.#refuse(req, new HeraldError('FORBIDDEN', 'this API needs an API key with the "admin" scope'));
  }

  /**
   * One history read spends one token of its caller's rate: the API key or token subject when
   * there is one, else the client address (as publishes).
   */
  #history(req: FastifyRequest): void {
    const address = this.addressOf(req.raw);
    const p = this.devMode ? undefined : this.principalOf(req);
    this.limits.history(p?.identity ?? `ip:${address}`, address);
  }

  /** One publish request spends one token of its key's rate, however many events it holds. */
  #charge(req: FastifyRequest, key: string, address: string | undefined): void {
    const r = this.#resolved.get(req.raw);
    if (r && 'charged' in r) {
      if (r.charged) return;
      r.charged = true;
    } else {
      this.#resolved.set(req.raw, { principal: ANONYMOUS, charged: true });
    }
    this.limits.publish(key, address);
  }

  #refuse(req: FastifyRequest, err: HeraldError): HeraldError {
    this.denied(req.raw, err);
    return err;
  }

  /**
   * Admits a subscriber's long-lived connection: authenticates its credential (none is anonymous),
   * checks it may subscribe to every one of `patterns`, then takes its place in the connection
   * limits. Throws 401 (no or bad credentials), 403 (valid but not allowed) or 429.
   */
  async admit(req: IncomingMessage, credential: Credential | undefined, patterns: readonly string[]): Promise<Admission> {
    const address = this.addressOf(req);
    try {
      // In dev mode only Herald's own dev tokens count (an identity); anything else is anonymous.
      const principal = await this.authenticator.authenticate(credential?.token, credential?.source);
      for (const p of patterns) this.authorizeSubscribe(principal, p, 'stream');
      return { principal, address, lease: this.limits.connect(address, principal.identity) };
    } catch (err) {
      if (err instanceof HeraldError) this.denied(req, err);
      throw err;
    }
  }

  maySubscribe(principal: Principal, pattern: string): boolean {
    return this.devMode || maySubscribe(principal, pattern, this.config.auth.publicChannels);
  }

  /**
   * Throws unless `principal` may subscribe to `pattern` (dev mode: everyone may). `via` says
   * where the request could have carried a credential, for the hint: a stream (SSE, WebSocket,
   * presence) also reads a JWT from `?token=` or the cookie, an API request only the header.
   */
  authorizeSubscribe(principal: Principal, pattern: string, via: 'stream' | 'header' = 'stream'): void {
    if (this.maySubscribe(principal, pattern)) return;
    if (principal.kind === 'anonymous') {
      const hint = via === 'stream' ? 'Authorization: Bearer <API key or JWT>, or a JWT in ?token= or the cookie' : 'Authorization: Bearer <API key or JWT>';
      throw new HeraldError('UNAUTHORIZED', `${pattern} is a private channel: send ${hint}`);
    }
    throw new HeraldError('SUBSCRIBE_FORBIDDEN', `these credentials may not subscribe to ${pattern}`);
  }

  /** Whether browsers from `origin` may use Herald with credentials (cors.origins). */
  originAllowed(origin: string | undefined, host: string | undefined): boolean {
    if (origin === undefined) return true; // not a browser: no cross-site request to forge
    const list = this.config.cors.origins;
    return list.includes('*') || list.includes(origin) || sameOrigin(origin, host);
  }

  /** Ends presence timers (the store is closed again with the backend: closing is idempotent). */
  close(): void {
    this.presence.close();
  }
}
