import type { FastifyInstance } from 'fastify';
import { HeraldError } from '../../core/errors.js';
import { formatEventId, parsePosition, type Position } from '../../core/position.js';
import type { Attempt, Delivery, DeliveryStatus, EndpointRecord } from '../../core/delivery-store.js';
import { LIST_PAGE_DEFAULT, LIST_PAGE_MAX } from '../../core/limits.js';
import type { OutboundWebhooks } from '../../transports/webhook-out/outbound-webhooks.js';
import { parseJson, parseLimit } from '../errors.js';
import type { Guard } from '../guard.js';

/** Dead deliveries one `retry-dead` call sends again: each is a store write, so a call stays short. */
export const BULK_RETRY_MAX = 1_000;
const STATUSES = new Set<DeliveryStatus>(['pending', 'delivered', 'dead', 'held']);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** What the routes need of the log to turn positions into event ids and back (the hub). */
export interface LogPositions {
  epoch(): Promise<string>;
  seqOf(p: Position): Promise<number>;
}

/**
 * `/v1/endpoints` and `/v1/deliveries`: the operator API of outbound webhooks. Every route is
 * behind `guard.operator` (dev mode: loopback clients only). Secrets are shown once, when made
 * (create, rotate), and custom header values are never shown back.
 */
export function outboundRoutes(parent: FastifyInstance, outbound: OutboundWebhooks, guard: Guard, log: LogPositions): void {
  // A scope of their own, so the operator check covers exactly these routes.
  void parent.register(async (app) => {
    app.addHook('onRequest', async (req) => guard.operator(req));
    routes(app, outbound, log);
  });
}

function routes(app: FastifyInstance, outbound: OutboundWebhooks, log: LogPositions): void {
  const endpointView = (e: EndpointRecord) => ({
    id: e.id,
    url: e.url,
    channels: e.channels,
    types: e.types,
    description: e.description,
    headers: Object.fromEntries(Object.keys(e.headers).map((k) => [k, '[set]'])),
    ordering: e.ordering,
    maxConcurrency: e.maxConcurrency,
    enabled: e.enabled,
    disabledReason: e.disabledReason,
    failingSince: iso(e.failingSince),
    circuit: outbound.circuit(e.id),
    previousSecretExpiresAt: e.previousSecretExpiresAt !== null && e.previousSecretExpiresAt > Date.now() ? iso(e.previousSecretExpiresAt) : null,
    createdAt: iso(e.createdAt),
    updatedAt: iso(e.updatedAt),
  });

  app.post('/v1/endpoints', async (req, reply) => {
    const e = await outbound.createEndpoint(parseJson(req.body));
    return reply.code(201).send({ ...endpointView(e), secret: e.secret });
  });

  app.get('/v1/endpoints', async () => {
    await outbound.endpointsUpToDate();
    return { endpoints: outbound.registry.list().map(endpointView) };
  });

  app.get<{ Params: { id: string } }>('/v1/endpoints/:id', async (req) => {
    await outbound.endpointsUpToDate();
    return endpointView(outbound.registry.require(req.params.id));
  });

  app.patch<{ Params: { id: string } }>('/v1/endpoints/:id', async (req) =>
    endpointView(await outbound.updateEndpoint(req.params.id, parseJson(req.body))),
  );

  app.delete<{ Params: { id: string } }>('/v1/endpoints/:id', async (req, reply) => {
    await outbound.deleteEndpoint(req.params.id);
    return reply.code(204).send();
  });

  app.post<{ Params: { id: string } }>('/v1/endpoints/:id/rotate-secret', async (req) => {
    const e = await outbound.rotateSecret(req.params.id);
    return { secret: e.secret, previousSecretExpiresAt: iso(e.previousSecretExpiresAt) };
  });

  app.get<{ Params: { id: string } }>('/v1/endpoints/:id/deliveries', async (req) => {
    const q = req.query as Record<string, string | undefined>;
    let status: DeliveryStatus | undefined;
    if (q.status !== undefined) {
      if (!STATUSES.has(q.status as DeliveryStatus)) {
        throw new HeraldError('BAD_REQUEST', `status is one of ${[...STATUSES].join(', ')}`);
      }
      status = q.status as DeliveryStatus;
    }
    const limit = parseLimit(q.limit, LIST_PAGE_DEFAULT, LIST_PAGE_MAX);
    const before = q.before === undefined ? undefined : parseDeliveryId(q.before);
    const list = await outbound.listDeliveries(req.params.id, { status, before, limit });
    const epoch = await log.epoch();
    const withAttempts = await Promise.all(
      list.map(async (d) => ({
        ...deliveryView(d, epoch),
        attempts: ((await outbound.store.getDelivery(d.id))?.attempts ?? []).map(attemptView),
      })),
    );
    return { deliveries: withAttempts, next: list.length === limit ? formatDeliveryId(list[list.length - 1]!.id) : null };
  });

  app.post<{ Params: { id: string } }>('/v1/endpoints/:id/replay', async (req, reply) => {
    const body = parseJson(req.body) as Record<string, unknown> | null;
    if (body === null || typeof body !== 'object' || Array.isArray(body) || !('after' in body)) {
      throw new HeraldError('BODY_INVALID', 'send { "after": "<event id>" } (use "0" for everything the log still holds)');
    }
    const r = await outbound.replay(req.params.id, await log.seqOf(parsePosition(body.after)));
    const epoch = await log.epoch();
    return reply.code(202).send({
      queued: r.queued,
      through: formatEventId(epoch, r.through),
      next: r.next === null ? null : formatEventId(epoch, r.next),
      prunedThrough: formatEventId(epoch, r.prunedThrough),
    });
  });

  // The dead deliveries of one endpoint, sent again with fresh schedules (after a fix at the
  // receiver). At most BULK_RETRY_MAX per call; `more` says to call again for the rest.
  app.post<{ Params: { id: string } }>('/v1/endpoints/:id/retry-dead', async (req, reply) => {
    const r = await outbound.retryDead(req.params.id, BULK_RETRY_MAX);
    return reply.code(202).send(r);
  });

  app.get<{ Params: { id: string } }>('/v1/deliveries/:id', async (req) => {
    const { delivery, attempts } = await outbound.getDelivery(parseDeliveryId(req.params.id));
    return { ...deliveryView(delivery, await log.epoch()), payload: JSON.parse(delivery.body) as unknown, attempts: attempts.map(attemptView) };
  });

  app.post<{ Params: { id: string } }>('/v1/deliveries/:id/retry', async (req, reply) => {
    const d = await outbound.retryDelivery(parseDeliveryId(req.params.id));
    return reply.code(202).send(deliveryView(d, await log.epoch()));
  });
}

function formatDeliveryId(id: number): string {
  return `dlv_${id}`;
}

function parseDeliveryId(value: string): number {
  const m = /^dlv_(\d{1,15})$/.exec(value);
  if (!m) throw new HeraldError('DELIVERY_NOT_FOUND', `no delivery has the id ${JSON.stringify(value.slice(0, 100))}`);
  return Number(m[1]);
}

function deliveryView(d: Delivery, epoch: string) {
  return {
    id: formatDeliveryId(d.id),
    endpointId: d.endpointId,
    eventId: formatEventId(epoch, d.eventSeq),
    webhookId: d.msgId,
    status: d.status,
    attemptCount: d.attempts,
    nextAttemptAt: d.status === 'pending' ? iso(d.nextAt) : null,
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    createdAt: iso(d.createdAt),
    updatedAt: iso(d.updatedAt),
  };
}

function attemptView(a: Attempt) {
  return {
    time: iso(a.at),
    status: a.status,
    durationMs: a.durationMs,
    responseBody: a.responseBody,
    error: a.error,
  };
}
