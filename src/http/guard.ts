import type { FastifyRequest } from 'fastify';
import { HeraldError } from '../core/errors.js';
import { clientAddress, isLoopback } from './client-address.js';

/**
 * Who may call the publish and operator APIs. With no credentials configured (dev mode) only
 * clients on this machine may: a gateway reachable from a network must never accept anonymous
 * publishes. Subscriptions and the seed routes stay open, as in the original example.
 */
export interface Guard {
  readonly devMode: boolean;
  publisher(req: FastifyRequest): void;
}

export function devModeGuard(): Guard {
  return {
    devMode: true,
    publisher(req) {
      if (!isLoopback(clientAddress(req))) throw new HeraldError('LOOPBACK_ONLY');
    },
  };
}
