import type { FastifyInstance } from 'fastify';
import { checkChannel } from '../core/channel.js';
import { HeraldError } from '../core/errors.js';
import { subscriberCredential } from '../auth/authenticator.js';
import { ANONYMOUS } from '../auth/permissions.js';
import type { Security } from '../auth/security.js';

/**
 * `GET /v1/channels/{channel}/presence`: the identities subscribed to a presence-enabled channel
 * on this node, with their connection counts. Whoever may subscribe to the channel may look; the
 * credential comes as for a stream (Authorization header, `token` query parameter, or cookie).
 */
export function presenceRoutes(app: FastifyInstance, security: Security): void {
  app.get('/v1/channels/:channel/presence', async (req) => {
    const { channel } = req.params as { channel: string };
    const check = checkChannel(channel);
    if (!check.ok || check.pattern) {
      throw new HeraldError('CHANNEL_INVALID', check.ok ? 'presence is listed per channel name, not per pattern' : check.reason);
    }
    if (!security.presence.enabled(channel)) {
      throw new HeraldError('PRESENCE_NOT_ENABLED', `presence is not enabled for ${channel} (presence.channels)`);
    }
    try {
      const credential = security.devMode
        ? undefined
        : subscriberCredential(req.headers, (req.query ?? {}) as Record<string, unknown>, security.config.auth.cookieName);
      const principal = security.devMode ? ANONYMOUS : await security.authenticator.authenticate(credential?.token, credential?.source);
      security.authorizeSubscribe(principal, channel);
    } catch (err) {
      if (err instanceof HeraldError) security.denied(req.raw, err);
      throw err;
    }
    return security.presence.snapshot(channel);
  });
}
