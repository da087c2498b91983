import type { FastifyInstance } from 'fastify';
import type { Hub } from '../../core/hub.js';
import type { Metrics } from '../../observability/metrics.js';

/** `/healthz` (the process answers), `/readyz` (it can take traffic), `/metrics` (Prometheus). */
export function opsRoutes(
  app: FastifyInstance,
  deps: { hub: Hub; metrics: Metrics; isClosing: () => boolean },
): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    if (deps.isClosing()) return reply.code(503).send({ status: 'shutting_down' });
    try {
      await deps.hub.store.head();
    } catch {
      return reply.code(503).send({ status: 'store_unavailable' });
    }
    return { status: 'ready' };
  });

  app.get('/metrics', async (_req, reply) => {
    const body = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(body);
  });
}
