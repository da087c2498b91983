import { Webhook } from 'standardwebhooks';
import { HeraldError } from '../../core/errors.js';
import {
  checkTolerance,
  field,
  parseJsonText,
  requireHeader,
  requireJson,
  requireUtf8,
  safeEqual,
  signatureInvalid,
  type InboundRequest,
  type VerifiedWebhook,
  type WebhookVerifier,
} from './verifier.js';

/**
 * Standard Webhooks (https://www.standardwebhooks.com, spec "Verifying webhook authenticity"):
 * `webhook-id`, `webhook-timestamp`, `webhook-signature` (space-separated `v1,<base64>`
 * entries), HMAC-SHA256 of `id.timestamp.body`; the key is the base64 after `whsec_`.
 *
 * The `standardwebhooks` library decodes the secret and builds the signature (`sign`); the
 * comparison is done here because the library's `verify` fixes the tolerance at 5 minutes and
 * reads the wall clock, while a source's `toleranceSeconds` and the injected clock must apply.
 */
export function standardVerifier(opts: { secrets: readonly string[]; toleranceSeconds: number }): WebhookVerifier {
  const hooks = opts.secrets.map((s) => new Webhook(s));
  return {
    auditHeaders: ['webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type', 'user-agent'],
    verify(req: InboundRequest): VerifiedWebhook {
      requireJson(req);
      const id = requireHeader(req, 'webhook-id');
      const timestamp = requireHeader(req, 'webhook-timestamp');
      const signatures = requireHeader(req, 'webhook-signature');
      if (!/^\d{1,15}$/.test(timestamp)) {
        throw new HeraldError('SIGNATURE_MISSING', 'webhook-timestamp must be integer seconds since the epoch');
      }
      const given = signatures
        .split(' ')
        .filter((s) => s.startsWith('v1,'))
        .map((s) => Buffer.from(s.slice(3)));
      if (given.length === 0) throw new HeraldError('SIGNATURE_MISSING', 'webhook-signature holds no v1 signature');
      checkTolerance(Number(timestamp), req, opts.toleranceSeconds);
      const text = requireUtf8(req.body);
      const at = new Date(Number(timestamp) * 1000);
      const ok = hooks.some((wh) => {
        const expected = Buffer.from(wh.sign(id, at, text).slice(3));
        return given.some((g) => safeEqual(g, expected));
      });
      if (!ok) throw signatureInvalid();
      const payload = parseJsonText(text);
      // webhook-id is signed: the idempotency key catches every replay, no digest is needed.
      return { id, type: field(payload, 'type') ?? 'webhook', payload, signedDigest: undefined };
    },
  };
}
