import { createHmac } from 'node:crypto';
import Stripe from 'stripe';
import { Webhook } from 'standardwebhooks';

/**
 * Requests signed exactly as each provider signs them: by the provider's own library where one
 * exists (stripe, standardwebhooks), else as the provider's documentation specifies. Used by
 * `herald webhooks send` and by the tests, so Herald's verifiers are checked against one
 * implementation of each provider's scheme.
 */
export interface SignedRequest {
  body: string;
  headers: Record<string, string>;
}

const JSON_TYPE = { 'content-type': 'application/json' };

/** Stripe: `Stripe-Signature: t=<seconds>,v1=<hex HMAC-SHA256 of "t.body">`, made by the stripe library. */
export function stripeRequest(payload: unknown, secret: string, timestamp = Math.floor(Date.now() / 1000)): SignedRequest {
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const signature = Stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp });
  return { body, headers: { ...JSON_TYPE, 'stripe-signature': signature } };
}

/** Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`, made by the standardwebhooks library. */
export function standardRequest(payload: unknown, secret: string, id: string, at = new Date()): SignedRequest {
  const body = JSON.stringify(payload);
  const signature = new Webhook(secret).sign(id, at, body);
  return {
    body,
    headers: {
      ...JSON_TYPE,
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': signature,
    },
  };
}

/** GitHub: https://docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries */
export function githubRequest(payload: unknown, secret: string, event: string, delivery: string): SignedRequest {
  const body = JSON.stringify(payload);
  return {
    body,
    headers: {
      ...JSON_TYPE,
      'x-github-event': event,
      'x-github-delivery': delivery,
      'x-hub-signature-256': 'sha256=' + createHmac('sha256', secret).update(body).digest('hex'),
    },
  };
}
