import { PresenceRegistry } from '../../src/presence/presence-registry.js';
import { presenceContract } from './presence.contract.js';

// In one process every node's connections are in the one registry.
presenceContract('in-process registry', {
  async create(t, opts) {
    const registry = new PresenceRegistry(opts);
    t.after(() => registry.close());
    return { node: () => registry };
  },
});
