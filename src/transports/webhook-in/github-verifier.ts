import { verify } from '@octokit/webhooks-methods';
import { HeraldError } from '../../core/errors.js';
import {
  header,
  parseForm,
  parseJsonText,
  requireHeader,
  requireJson,
  requireUtf8,
  signatureInvalid,
  signedDigest,
  type InboundRequest,
  type VerifiedWebhook,
  type WebhookVerifier,
} from './verifier.js';

const FORM = 'application/x-www-form-urlencoded';

/**
 * GitHub (https://docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries):
 * `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, checked with
 * `@octokit/webhooks-methods` (constant time). Only the body is signed: no timestamp, and neither
 * `X-GitHub-Delivery` nor `X-GitHub-Event`, so a captured body re-sent with a new delivery id and
 * another event type still verifies. Such a replay is caught by the digest of the body (the
 * store answers it as a duplicate); the event type can only come from the unsigned header, so
 * a channel template uses it only when the source opts in (`unsignedTypeInChannel`).
 * Both content types GitHub offers are taken.
 */
export function githubVerifier(opts: { secrets: readonly string[] }): WebhookVerifier {
  return {
    auditHeaders: ['x-github-delivery', 'x-github-event', 'x-hub-signature-256', 'x-github-hook-id', 'content-type', 'user-agent'],
    async verify(req: InboundRequest): Promise<VerifiedWebhook> {
      const media = requireJson(req, [FORM]);
      const signature = requireHeader(req, 'x-hub-signature-256');
      if (!/^sha256=[0-9a-f]{64}$/.test(signature)) {
        throw new HeraldError('SIGNATURE_MISSING', 'X-Hub-Signature-256 must be sha256=<64 hex digits>');
      }
      const text = requireUtf8(req.body);
      let ok = false;
      for (const secret of opts.secrets) if (!ok && (await verify(secret, text, signature))) ok = true;
      if (!ok) throw signatureInvalid();
      const type = header(req, 'x-github-event');
      if (type === undefined) throw new HeraldError('WEBHOOK_PAYLOAD_INVALID', 'the X-GitHub-Event header is missing');
      const payload = media === FORM ? parseForm(text).payload : parseJsonText(text);
      if (payload === undefined) throw new HeraldError('WEBHOOK_PAYLOAD_INVALID', 'the form has no payload field');
      return { id: header(req, 'x-github-delivery'), type, payload, signedDigest: signedDigest(req.body) };
    },
  };
}
