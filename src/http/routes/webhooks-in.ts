import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HeraldError } from '../../core/errors.js';
import type { Receipt, ReceiptStatus } from '../../core/inbound-receipt.js';
import { formatEventId } from '../../core/position.js';
import { LIST_PAGE_DEFAULT, LIST_PAGE_MAX } from '../../core/limits.js';
import type { Logger } from '../../observability/logger.js';
import type { WebhookReceiver } from '../../transports/webhook-in/webhook-receiver.js';
import { errorHandler, parseLimit } from '../errors.js';
import type { Guard } from '../guard.js';

const STATUSES: readonly ReceiptStatus[] = ['accepted', 'duplicate', 'replayed', 'rejected'];

/**
 * Inbound webhooks: `POST /v1/webhooks/{name}` (one route per source, so each has its own body
 * limit), the list of sources `GET /v1/webhooks`, the inbound log `GET /v1/webhooks/{name}/received` and
 * `POST /v1/webhooks/{name}/received/{id}/replay` (operator APIs).
 */
export function webhookInRoutes(
  app: FastifyInstance,
  deps: { receiver: WebhookReceiver; guard: Guard; log: Logger; epoch: () => Promise<string> },
): void {
  const { receiver, guard } = deps;
  const handleError = errorHandler(deps.log);

  for (const source of receiver.sources.values()) {
    app.post(
      `/v1/webhooks/${source.name}`,
      {
        bodyLimit: source.config.maxBodyBytes,
        // Errors raised before the handler runs (413 from the body limit) still belong in the
        // source's inbound log; the handler's own rejections are recorded by the receiver.
        errorHandler: (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
          if (!(err instanceof HeraldError) && (err.statusCode === 413 || err.statusCode === 415)) {
            const known = new HeraldError(err.statusCode === 413 ? 'BODY_TOO_LARGE' : 'UNSUPPORTED_MEDIA_TYPE', err.message);
            receiver.reject(source, req.headers, known);
          }
          handleError(err, req, reply);
        },
      },
      async (req, reply) => {
        const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const r = await receiver.receive(source, body, req.headers);
        if (r.kind === 'challenge') return reply.send({ challenge: r.challenge });
        return reply
          .header('herald-event-id', r.eventId)
          .send({ received: true, id: r.eventId, duplicate: r.duplicate, receipt: String(r.receiptId) });
      },
    );
  }

  // Any other name: 404 before the body is read, so an unknown source never costs a body's
  // worth of memory and never answers 413 instead of 404.
  app.post('/v1/webhooks/:name', {
    onRequest: async (req) => {
      receiver.source((req.params as { name: string }).name);
    },
    handler: async () => {
      throw new HeraldError('SOURCE_UNKNOWN');
    },
  });

  // The configured sources (no secrets), so an operator can find each one's inbound log.
  app.get('/v1/webhooks', async (req) => {
    guard.operator(req);
    return {
      sources: [...receiver.sources.values()].map((s) => ({
        name: s.name,
        provider: s.config.provider,
        channel: s.config.channel,
        path: `/v1/webhooks/${s.name}`,
      })),
    };
  });

  app.get('/v1/webhooks/:name/received', async (req) => {
    guard.operator(req);
    const source = receiver.source((req.params as { name: string }).name);
    const q = req.query as Record<string, string | undefined>;
    const limit = parseLimit(q.limit, LIST_PAGE_DEFAULT, LIST_PAGE_MAX);
    const before = q.before === undefined ? 0 : receiptId(q.before);
    const status = q.status as ReceiptStatus | undefined;
    if (status !== undefined && !STATUSES.includes(status)) {
      throw new HeraldError('BAD_REQUEST', `status is one of ${STATUSES.join(', ')}`);
    }
    const receipts = await receiver.list(source, { before, limit, status });
    const last = receipts[receipts.length - 1];
    const epoch = await deps.epoch();
    return {
      received: receipts.map((r) => receiptToJson(r, epoch)),
      ...(receipts.length === limit && last ? { next: String(last.id) } : {}),
    };
  });

  app.post('/v1/webhooks/:name/received/:id/replay', async (req, reply) => {
    guard.operator(req);
    const params = req.params as { name: string; id: string };
    const source = receiver.source(params.name);
    const r = await receiver.replay(source, receiptId(params.id));
    return reply.code(201).send({ id: r.eventId, receipt: String(r.receiptId) });
  });
}

function receiptId(v: string): number {
  if (!/^\d{1,15}$/.test(v) || Number(v) < 1) throw new HeraldError('RECEIPT_NOT_FOUND', 'a receipt id is a positive integer');
  return Number(v);
}

/** The public shape of a receipt: the payload only for accepted arrivals; `epoch`: the log's. */
export function receiptToJson(r: Receipt, epoch: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: String(r.id),
    status: r.status,
    receivedAt: new Date(r.receivedAt).toISOString(),
  };
  if (r.providerId !== undefined) out.providerEventId = r.providerId;
  if (r.type !== undefined) out.type = r.type;
  if (r.seq !== undefined) out.eventId = formatEventId(epoch, r.seq);
  if (r.replayOf !== undefined) out.replayOf = String(r.replayOf);
  if (r.error) out.error = r.error;
  out.headers = r.headers;
  if (r.body !== undefined) {
    const text = r.body.toString('utf8');
    try {
      out.payload = JSON.parse(text) as unknown;
    } catch {
      out.payload = text;
    }
  }
  return out;
}
