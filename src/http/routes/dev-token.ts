import type { FastifyInstance } from 'fastify';
import { HeraldError } from '../../core/errors.js';
import { parseJson } from '../errors.js';
import type { Guard } from '../guard.js';

/** Who mints dev tokens (src/auth/dev-tokens.ts); it checks what it is asked for. */
export interface DevTokenIssuer {
  /** Mints a token for a request body `{sub, publish?, subscribe?, ttlSeconds?}`; throws BODY_INVALID. */
  mintFor(body: Readonly<Record<string, unknown>>): Promise<{ token: string; expiresAt: string }>;
}

/**
 * `POST /v1/dev/token`: a short-lived token signed by Herald itself, so a page can have an
 * identity (presence) and practise the token flow of production in dev mode. Answers only in dev
 * mode, and only as the other local APIs do there (this machine, by a loopback name, from
 * Herald's own pages or cors.origins). With credentials configured it does not exist: tokens
 * come from the application's backend (docs/auth.md).
 */
export function devTokenRoutes(app: FastifyInstance, deps: { dev: DevTokenIssuer | undefined; guard: Guard }): void {
  app.post('/v1/dev/token', async (req, reply) => {
    const dev = deps.dev;
    if (!dev) throw new HeraldError('NOT_FOUND', 'dev tokens exist only in dev mode; with auth configured, tokens come from your backend');
    deps.guard.operator(req); // dev mode: loopback callers only
    const body = parseJson(req.body);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HeraldError('BODY_INVALID', 'send {"sub": "...", "publish": [...]}');
    return reply.code(201).send(await dev.mintFor(body as Record<string, unknown>));
  });
}
