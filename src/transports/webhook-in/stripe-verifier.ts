import Stripe from 'stripe';
import { HeraldError } from '../../core/errors.js';
import {
  requireField,
  requireHeader,
  requireJson,
  requireUtf8,
  signatureInvalid,
  type InboundRequest,
  type VerifiedWebhook,
  type WebhookVerifier,
} from './verifier.js';

/** `t=<unix seconds>` and at least one `v1=<hex>`: the shape of a Stripe-Signature header. */
const STRIPE_SIGNATURE = /(^|,)\s*t=\d+\s*(,|$)/;

/**
 * Stripe (https://docs.stripe.com/webhooks#verify-events): `Stripe-Signature: t=...,v1=...`,
 * HMAC-SHA256 of `t.body`, possibly several `v1` entries. Verified by the official library's
 * `webhooks.constructEvent`, which compares in constant time and checks the tolerance. The key
 * is the whole `whsec_...` string, as Stripe shows it: the library uses it as it is.
 */
export function stripeVerifier(opts: { secrets: readonly string[]; toleranceSeconds: number }): WebhookVerifier {
  return {
    auditHeaders: ['stripe-signature', 'content-type', 'user-agent'],
    verify(req: InboundRequest): VerifiedWebhook {
      requireJson(req);
      const signature = requireHeader(req, 'stripe-signature');
      if (!STRIPE_SIGNATURE.test(signature) || !signature.includes('v1=')) {
        throw new HeraldError('SIGNATURE_MISSING', 'Stripe-Signature needs t=<timestamp> and v1=<signature>');
      }
      requireUtf8(req.body);
      let tooOld = false;
      for (const secret of opts.secrets) {
        let event: { id?: unknown; type?: unknown };
        try {
          event = Stripe.webhooks.constructEvent(
            req.body,
            signature,
            secret,
            opts.toleranceSeconds,
            undefined,
            req.receivedAt,
          ) as unknown as { id?: unknown; type?: unknown };
        } catch (err) {
          // The library checks the signature first, then parses: a SyntaxError means the body
          // was signed by Stripe's secret but is not JSON.
          if (err instanceof SyntaxError) throw new HeraldError('JSON_INVALID', 'the body is not valid JSON');
          if (/tolerance/i.test((err as Error).message)) tooOld = true;
          continue;
        }
        return { id: requireField(event, 'id', 'Stripe'), type: requireField(event, 'type', 'Stripe'), payload: event };
      }
      if (tooOld) {
        throw new HeraldError(
          'TIMESTAMP_OUT_OF_TOLERANCE',
          `the Stripe-Signature timestamp is older than ${opts.toleranceSeconds} s`,
        );
      }
      throw signatureInvalid();
    },
  };
}
