import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Hub } from '../../core/hub.js';
import type { ReadinessCheck } from '../../core/readiness.js';
import type { Metrics } from '../../observability/metrics.js';

/** `/healthz` (the process answers), `/readyz` (it can take traffic), `/metrics` (Prometheus). */
export function opsRoutes(
  app: FastifyInstance,
  deps: {
    hub: Hub;
    metrics: Metrics;
    isClosing: () => boolean;
    checks?: readonly ReadinessCheck[];
    /** False while the log's appends fail (a full disk), until a write succeeds again. */
    storeWritable?: () => Promise<boolean>;
    /** Throws unless the request may read `/metrics` (route names, rates and queue depths). */
    metricsReader?: (req: FastifyRequest) => void;
  },
): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    if (deps.isClosing()) return reply.code(503).send({ status: 'shutting_down' });
    const checks = (deps.checks ?? []).filter((c) => !c.listedOnlyWhenFailing || !c.ready);
    const states = Object.fromEntries(checks.map((c) => [c.name, c.state]));
    // A part known to be down is named first (a shared backend that is unreachable would
    // otherwise show only as a log that cannot answer).
    const notReady = checks.find((c) => !c.ready);
    if (notReady) return reply.code(503).send({ status: `${notReady.name}_not_ready`, checks: states });
    try {
      await deps.hub.head();
    } catch {
      return reply.code(503).send({ status: 'store_unavailable' });
    }
    if (deps.storeWritable && !(await deps.storeWritable())) return reply.code(503).send({ status: 'store_not_writable' });
    if (checks.length === 0) return { status: 'ready' };
    return { status: 'ready', checks: states };
  });

  app.get('/metrics', async (req, reply) => {
    deps.metricsReader?.(req);
    const body = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(body);
  });
}
