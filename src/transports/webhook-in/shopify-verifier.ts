import { createHmac } from 'node:crypto';
import { HeraldError } from '../../core/errors.js';
import {
  header,
  parseJsonText,
  requireHeader,
  requireJson,
  requireUtf8,
  safeEqual,
  signatureInvalid,
  signedDigest,
  type InboundRequest,
  type VerifiedWebhook,
  type WebhookVerifier,
} from './verifier.js';

/**
 * Shopify (https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook):
 * `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 of the raw body with the app's client
 * secret. Only the body is signed: not the topic, the event id or `X-Shopify-Triggered-At`.
 * Retries are recognised by `X-Shopify-Event-Id` (older deliveries: `X-Shopify-Webhook-Id`), a
 * re-sent body under any other id or topic by the digest of the body; the topic is unsigned, so
 * a channel template uses it only when the source opts in (`unsignedTypeInChannel`).
 */
export function shopifyVerifier(opts: { secrets: readonly string[] }): WebhookVerifier {
  return {
    auditHeaders: [
      'x-shopify-hmac-sha256', 'x-shopify-topic', 'x-shopify-event-id', 'x-shopify-webhook-id',
      'x-shopify-shop-domain', 'x-shopify-triggered-at', 'content-type',
    ],
    verify(req: InboundRequest): VerifiedWebhook {
      requireJson(req);
      const signature = requireHeader(req, 'x-shopify-hmac-sha256');
      if (!/^[A-Za-z0-9+/]{43}=$/.test(signature)) {
        throw new HeraldError('SIGNATURE_MISSING', 'X-Shopify-Hmac-Sha256 must be a base64 SHA-256 HMAC');
      }
      const given = Buffer.from(signature, 'base64');
      const ok = opts.secrets.some((s) => safeEqual(given, createHmac('sha256', s).update(req.body).digest()));
      if (!ok) throw signatureInvalid();
      const type = header(req, 'x-shopify-topic');
      if (type === undefined) throw new HeraldError('WEBHOOK_PAYLOAD_INVALID', 'the X-Shopify-Topic header is missing');
      const payload = parseJsonText(requireUtf8(req.body));
      return {
        id: header(req, 'x-shopify-event-id') ?? header(req, 'x-shopify-webhook-id'),
        type,
        payload,
        signedDigest: signedDigest(req.body),
      };
    },
  };
}
