import type { FastifyInstance, FastifyRequest } from 'fastify';
import { checkChannel } from '../../core/channel.js';
import { HeraldError } from '../../core/errors.js';

/** Who may see a channel's members, and what they are (src/auth/presence-lookup.ts implements it). */
export interface PresenceLookup {
  /**
   * The members of `channel` (a channel name, already checked), after the checks a subscription
   * to it would pass: PRESENCE_NOT_ENABLED, then 401/403 as for a stream.
   */
  members(req: FastifyRequest, channel: string): Promise<unknown>;
}

/**
 * `GET /v1/channels/{channel}/presence`: the identities subscribed to a presence-enabled channel
 * on this node, with their connection counts. Whoever may subscribe to the channel may look; the
 * credential comes as for a stream (Authorization header, `token` query parameter, or cookie).
 */
export function presenceRoutes(app: FastifyInstance, lookup: PresenceLookup): void {
  app.get('/v1/channels/:channel/presence', async (req) => {
    const { channel } = req.params as { channel: string };
    const check = checkChannel(channel);
    if (!check.ok || check.pattern) {
      throw new HeraldError('CHANNEL_INVALID', check.ok ? 'presence is listed per channel name, not per pattern' : check.reason);
    }
    return lookup.members(req, channel);
  });
}
