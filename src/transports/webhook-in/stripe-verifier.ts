import Stripe from 'stripe';
import { HeraldError } from '../../core/errors.js';
import {
  checkTolerance,
  requireField,
  requireHeader,
  requireJson,
  requireUtf8,
  signatureInvalid,
  type InboundRequest,
  type VerifiedWebhook,
  type WebhookVerifier,
} from './verifier.js';

/** `t=<unix seconds>`: the one timestamp of a Stripe-Signature header (with at least one `v1=`). */
const STRIPE_TIMESTAMP = /(?:^|,)\s*t=(\d{1,15})\s*(?=,|$)/g;

/**
 * Stripe (https://docs.stripe.com/webhooks#verify-events): `Stripe-Signature: t=...,v1=...`,
 * HMAC-SHA256 of `t.body`, possibly several `v1` entries. Verified by the official library's
 * `webhooks.constructEvent`, which compares in constant time and checks the tolerance, but only
 * into the past: a timestamp hours ahead of the clock passes it, so a signature leaked today
 * would replay until then. The future side is checked here, after the signature. The key is
 * the whole `whsec_...` string, as Stripe shows it: the library uses it as it is.
 */
export function stripeVerifier(opts: { secrets: readonly string[]; toleranceSeconds: number }): WebhookVerifier {
  return {
    auditHeaders: ['stripe-signature', 'content-type', 'user-agent'],
    verify(req: InboundRequest): VerifiedWebhook {
      requireJson(req);
      const signature = requireHeader(req, 'stripe-signature');
      // Exactly one `t=`: the library keeps the last one it reads, and the future check below must
      // look at the very timestamp the signature was checked with.
      const timestamps = [...signature.matchAll(STRIPE_TIMESTAMP)].map((m) => m[1]!);
      if (timestamps.length !== 1 || !signature.includes('v1=')) {
        throw new HeraldError('SIGNATURE_MISSING', 'Stripe-Signature needs one t=<timestamp> and v1=<signature>');
      }
      const timestamp = timestamps[0]!;
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
        checkTolerance(Number(timestamp), req, opts.toleranceSeconds);
        return {
          id: requireField(event, 'id', 'Stripe'),
          type: requireField(event, 'type', 'Stripe'),
          payload: event,
          signedDigest: undefined, // the signed body holds the id: the idempotency key suffices
        };
      }
      if (tooOld) {
        throw new HeraldError(
          'TIMESTAMP_OUT_OF_TOLERANCE',
          `the Stripe-Signature timestamp is more than ${opts.toleranceSeconds} s from now`,
        );
      }
      throw signatureInvalid();
    },
  };
}
