import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { HeraldError } from '../../core/errors.js';
import { channelPatternFor } from '../../transports/webhook-in/channel-template.js';
import { signStripeTest, testOrderEvent, type RefundOf, type TestOrderKind } from '../../transports/webhook-in/stripe-test-webhook.js';
import type { Source } from '../../transports/webhook-in/webhook-receiver.js';
import { parseJson } from '../errors.js';
import type { Guard } from '../guard.js';
import { packageRoot } from './pages.js';

/** Milliseconds the server waits for its own webhook endpoint to answer the test webhook. */
const TEST_WEBHOOK_TIMEOUT_MS = 10_000;
const KINDS: readonly TestOrderKind[] = ['succeeded', 'failed', 'refunded'];

/**
 * The order dashboard demo at `/demo/orders` (web/demo/orders.html): orders arrive live over SSE
 * as Stripe-style webhooks reach the first `stripe` source. Its button asks the server to sign a
 * test webhook with that source's secret and send it through the real endpoint over HTTP(S), so the
 * demo exercises exactly what a real Stripe delivery does. Sending is an operator action.
 */
export function demoOrderRoutes(app: FastifyInstance, deps: { sources: ReadonlyMap<string, Source>; guard: Guard }): void {
  const html = readFileSync(join(packageRoot(), 'web/demo/orders.html'));
  const source = [...deps.sources.values()].find((s) => s.config.provider === 'stripe');

  app.get('/demo/orders', async (_req, reply) => reply.type('text/html; charset=utf-8').send(html));

  // The source's name and channel: with auth configured, only for whoever may read that channel
  // (admin, a subscribe grant, or a public channel), since the page can show nothing to others.
  app.get('/demo/orders/config', async (req) => {
    if (!source) return { source: null, channel: null };
    const channel = channelPatternFor(source.config.channel.replace('{source}', source.name));
    deps.guard.subscriber(req, channel);
    return { source: source.name, channel };
  });

  app.post('/demo/orders/test-webhook', async (req, reply) => {
    deps.guard.operator(req);
    if (!source) throw new HeraldError('SOURCE_UNKNOWN', 'configure a source with provider "stripe" to send test orders');
    const body = req.body === undefined || (Buffer.isBuffer(req.body) && req.body.length === 0) ? {} : parseJson(req.body);
    const { kind = 'succeeded', refund } = body as { kind?: unknown; refund?: unknown };
    if (!KINDS.includes(kind as TestOrderKind)) throw new HeraldError('BODY_INVALID', `kind is one of ${KINDS.join(', ')}`);
    const payload = testOrderEvent(kind as TestOrderKind, kind === 'refunded' ? checkRefund(refund) : undefined);
    const signed = signStripeTest(payload, source.config.secrets[0]!);
    // Through the real endpoint: the address this request arrived on reaches this server. With
    // `tls` its certificate names the server, not that address, and may be self-signed; the
    // request goes to an address of this machine, so it is not checked.
    const host = req.socket.localAddress?.includes(':') ? `[${req.socket.localAddress}]` : req.socket.localAddress;
    const secure = req.protocol === 'https';
    const dispatcher = secure ? new Agent({ connect: { rejectUnauthorized: false } }) : undefined;
    try {
      const res = await fetch(`${secure ? 'https' : 'http'}://${host}:${req.socket.localPort}/v1/webhooks/${source.name}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': signed.signature },
        body: signed.body,
        signal: AbortSignal.timeout(TEST_WEBHOOK_TIMEOUT_MS),
        ...(dispatcher ? { dispatcher } : {}),
      });
      const answer = (await res.json()) as unknown;
      return reply.code(res.status).send({ sent: payload, answer });
    } finally {
      await dispatcher?.close();
    }
  });
}

/** The refund the page asks for, checked: it becomes part of a signed payload. */
function checkRefund(raw: unknown): RefundOf {
  const r = (raw ?? {}) as Record<string, unknown>;
  const text = (v: unknown, re: RegExp) => typeof v === 'string' && re.test(v);
  if (
    !text(r.paymentIntent, /^pi_[A-Za-z0-9_-]{1,64}$/) ||
    !Number.isSafeInteger(r.amount) || (r.amount as number) <= 0 ||
    !text(r.currency, /^[a-z]{3}$/) ||
    !text(r.orderId, /^[A-Za-z0-9-]{1,32}$/) ||
    !text(r.customer, /^[^\u0000-\u001f]{1,100}$/)
  ) {
    throw new HeraldError('BODY_INVALID', 'refund needs paymentIntent (pi_...), amount (cents), currency, orderId and customer');
  }
  return r as unknown as RefundOf;
}
