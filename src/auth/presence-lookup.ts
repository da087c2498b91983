import type { FastifyRequest } from 'fastify';
import { HeraldError } from '../core/errors.js';
import type { PresenceLookup } from '../http/routes/presence.js';
import type { PresenceSnapshot } from '../core/presence.js';
import { subscriberCredential } from './authenticator.js';
import { ANONYMOUS } from './permissions.js';
import type { Security } from './security.js';

/**
 * The checks behind `GET /v1/channels/{channel}/presence`: presence must be enabled for the
 * channel, and the caller must be allowed to subscribe to it (the member list reveals who is
 * there, so it is as private as the channel's events).
 */
export function presenceLookup(security: Security): PresenceLookup {
  return {
    async members(req: FastifyRequest, channel: string): Promise<PresenceSnapshot> {
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
    },
  };
}
