import type { FastifyInstance } from 'fastify';
import { DEV_TOKEN_DEFAULT_TTL_SECONDS, type DevTokens } from '../../auth/dev-tokens.js';
import { IDENTITY_MAX_CHARS, TOKEN_GRANTS_MAX } from '../../auth/jwt-verifier.js';
import { checkChannel } from '../../core/channel.js';
import { HeraldError } from '../../core/errors.js';
import { checkLabel } from '../../core/event.js';
import { parseJson } from '../errors.js';
import type { Guard } from '../guard.js';

/**
 * `POST /v1/dev/token`: a short-lived token signed by Herald itself, so a page can have an
 * identity (presence) and practise the token flow of production in dev mode. Answers only in dev
 * mode, and only as the other local APIs do there (this machine, by a loopback name, from
 * Herald's own pages or cors.origins). With credentials configured it does not exist: tokens
 * come from the application's backend (docs/auth.md).
 */
export function devTokenRoutes(app: FastifyInstance, deps: { dev: DevTokens | undefined; guard: Guard }): void {
  app.post('/v1/dev/token', async (req, reply) => {
    const dev = deps.dev;
    if (!dev) throw new HeraldError('NOT_FOUND', 'dev tokens exist only in dev mode; with auth configured, tokens come from your backend');
    deps.guard.operator(req); // dev mode: loopback callers only
    const body = parseJson(req.body);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HeraldError('BODY_INVALID', 'send {"sub": "...", "publish": [...]}');
    const o = body as Record<string, unknown>;
    const bad = checkLabel(o.sub, IDENTITY_MAX_CHARS, 'sub');
    if (bad) throw new HeraldError('BODY_INVALID', bad);
    const ttl = o.ttlSeconds ?? DEV_TOKEN_DEFAULT_TTL_SECONDS;
    const minted = await dev.mint({
      sub: o.sub as string,
      publish: patterns(o.publish, 'publish'),
      subscribe: patterns(o.subscribe, 'subscribe'),
      ttlSeconds: ttl as number,
    });
    return reply.code(201).send(minted);
  });
}

function patterns(v: unknown, field: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > TOKEN_GRANTS_MAX) {
    throw new HeraldError('BODY_INVALID', `${field} is a list of at most ${TOKEN_GRANTS_MAX} channel patterns`);
  }
  for (const p of v) {
    const c = checkChannel(p);
    if (!c.ok) throw new HeraldError('BODY_INVALID', `${field}: ${String(p).slice(0, 64)}: ${c.reason}`);
  }
  return v as string[];
}
