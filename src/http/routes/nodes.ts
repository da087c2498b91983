import type { FastifyInstance } from 'fastify';
import { HeraldError } from '../../core/errors.js';
import { NODE_EXPIRY_MS, NODE_HEARTBEAT_MS, type NodeDirectory, type NodeRecord } from '../../core/nodes.js';
import type { Guard } from '../guard.js';

/**
 * `GET /v1/nodes`: the live nodes of this deployment (every node sharing this one's backend),
 * each from its last heartbeat, this node from a record made now (`self: true`). Admin only, like
 * the other operator APIs: it names hosts and process ids.
 */
export function nodeRoutes(
  parent: FastifyInstance,
  deps: { directory: NodeDirectory; self: () => Promise<NodeRecord>; guard: Guard },
): void {
  void parent.register(async (app) => {
    app.addHook('onRequest', async (req) => deps.guard.operator(req));
    app.get('/v1/nodes', async () => {
      const now = Date.now();
      const [listed, self] = await Promise.all([
        deps.directory.list(now).catch((err: unknown) => {
          if (err instanceof HeraldError) throw err;
          throw new HeraldError('BACKEND_UNAVAILABLE', `the backend did not list the nodes: ${(err as Error)?.message ?? String(err)}`);
        }),
        deps.self(),
      ]);
      const records = [self, ...listed.filter((r) => r.id !== self.id)].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      return {
        node: self.id,
        heartbeatSeconds: NODE_HEARTBEAT_MS / 1000,
        expirySeconds: NODE_EXPIRY_MS / 1000,
        nodes: records.map((r) => view(r, r.id === self.id)),
      };
    });
  });
}

function view(r: NodeRecord, self: boolean) {
  return {
    id: r.id,
    self,
    host: r.host,
    pid: r.pid,
    startedAt: new Date(r.startedAt).toISOString(),
    lastSeenAt: new Date(r.lastSeenAt).toISOString(),
    connections: Object.values(r.connections).reduce((a, b) => a + b, 0),
    connectionsByTransport: r.connections,
    subscriptions: r.subscriptions,
    published: r.published,
    delivered: r.delivered,
    lag: r.lag,
  };
}
