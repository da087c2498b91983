import type { FastifyInstance } from 'fastify';
import type { Hub } from '../../core/hub.js';
import type { Metrics } from '../../observability/metrics.js';

/** A component `/readyz` asks besides the store (the Kafka consumer). */
export interface ReadinessCheck {
  readonly name: string;
  readonly ready: boolean;
  readonly state: string;
}

/** `/healthz` (the process answers), `/readyz` (it can take traffic), `/metrics` (Prometheus). */
export function opsRoutes(
  app: FastifyInstance,
  deps: { hub: Hub; metrics: Metrics; isClosing: () => boolean; checks?: readonly ReadinessCheck[] },
): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    if (deps.isClosing()) return reply.code(503).send({ status: 'shutting_down' });
    try {
      await deps.hub.head();
    } catch {
      return reply.code(503).send({ status: 'store_unavailable' });
    }
    const checks = deps.checks ?? [];
    if (checks.length === 0) return { status: 'ready' };
    const states = Object.fromEntries(checks.map((c) => [c.name, c.state]));
    const notReady = checks.find((c) => !c.ready);
    if (notReady) return reply.code(503).send({ status: `${notReady.name}_not_ready`, checks: states });
    return { status: 'ready', checks: states };
  });

  app.get('/metrics', async (_req, reply) => {
    const body = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(body);
  });
}
