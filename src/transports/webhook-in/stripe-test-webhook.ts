import { randomBytes, randomInt } from 'node:crypto';
import Stripe from 'stripe';
import { HeraldError } from '../../core/errors.js';

/** The Stripe event types the order dashboard demo understands. */
export type TestOrderKind = 'succeeded' | 'failed' | 'refunded';

/** A refund names the payment it refunds (the dashboard sends back what it showed). */
export interface RefundOf {
  paymentIntent: string;
  amount: number;
  currency: string;
  orderId: string;
  customer: string;
}

const CUSTOMERS = ['Ada Lovelace', 'Grace Hopper', 'Alan Turing', 'Katherine Johnson', 'Linus Pauling', 'Hedy Lamarr', 'Tim Berners-Lee', 'Margaret Hamilton'];
const PRODUCTS: [name: string, cents: number][] = [
  ['Ceramic pour-over set', 4_800], ['Single-origin beans, 1 kg', 3_200], ['Linen apron', 2_900],
  ['Walnut serving board', 6_500], ['Stoneware mug (pair)', 3_600], ['Gift card', 5_000],
];
const DECLINES: [code: string, message: string][] = [
  ['insufficient_funds', 'Your card has insufficient funds.'],
  ['card_declined', 'Your card was declined.'],
  ['expired_card', 'Your card has expired.'],
];

const pick = <T>(list: readonly T[]): T => list[randomInt(list.length)]!;
const id = (prefix: string) => `${prefix}_${randomBytes(12).toString('base64url')}`;

/** A Stripe-style event payload (API shape of `Event` with a PaymentIntent or Charge object). */
export function testOrderEvent(kind: TestOrderKind, refund?: RefundOf): Record<string, unknown> {
  const created = Math.floor(Date.now() / 1000);
  const base = { id: id('evt'), object: 'event', api_version: '2024-06-20', created, livemode: false, pending_webhooks: 1 };
  if (kind === 'refunded') {
    if (!refund) throw new HeraldError('BODY_INVALID', 'a refund names the payment it refunds');
    return {
      ...base,
      type: 'charge.refunded',
      data: {
        object: {
          id: id('ch'), object: 'charge', amount: refund.amount, amount_refunded: refund.amount, currency: refund.currency,
          payment_intent: refund.paymentIntent, refunded: true, status: 'succeeded',
          metadata: { order_id: refund.orderId, customer_name: refund.customer },
        },
      },
    };
  }
  const pool = [...PRODUCTS];
  const items: typeof PRODUCTS = [];
  for (let n = 1 + randomInt(3); n > 0; n--) items.push(pool.splice(randomInt(pool.length), 1)[0]!);
  const amount = items.reduce((sum, [, cents]) => sum + cents, 0);
  const customer = pick(CUSTOMERS);
  const decline = pick(DECLINES);
  return {
    ...base,
    type: kind === 'succeeded' ? 'payment_intent.succeeded' : 'payment_intent.payment_failed',
    data: {
      object: {
        id: id('pi'), object: 'payment_intent', amount, currency: 'eur', created,
        status: kind === 'succeeded' ? 'succeeded' : 'requires_payment_method',
        receipt_email: `${customer.split(' ')[0]!.toLowerCase()}@example.com`,
        description: items.map(([name]) => name).join(', '),
        metadata: { order_id: String(1000 + randomInt(9000)), customer_name: customer },
        ...(kind === 'failed' ? { last_payment_error: { code: 'card_declined', decline_code: decline[0], message: decline[1] } } : {}),
      },
    },
  };
}

/** The body and `Stripe-Signature` header, signed by the stripe library with `secret`. */
export function signStripeTest(payload: unknown, secret: string): { body: string; signature: string } {
  const body = JSON.stringify(payload);
  return { body, signature: Stripe.webhooks.generateTestHeaderString({ payload: body, secret }) };
}
