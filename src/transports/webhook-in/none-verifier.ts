import { describe } from './hmac-verifier.js';
import { parseJsonText, requireJson, requireUtf8, type InboundRequest, type VerifiedWebhook, type WebhookVerifier } from './verifier.js';

/**
 * No signature at all: anyone who can reach the URL can publish through it. Only for senders
 * that cannot sign and sit on a trusted network; Herald logs a warning at start for each.
 */
export function noneVerifier(opts: { idHeader?: string | undefined; typeHeader?: string | undefined }): WebhookVerifier {
  return {
    auditHeaders: [...(opts.idHeader ? [opts.idHeader] : []), ...(opts.typeHeader ? [opts.typeHeader] : []), 'content-type'],
    verify(req: InboundRequest): VerifiedWebhook {
      requireJson(req);
      return describe(req, parseJsonText(requireUtf8(req.body)), opts, undefined);
    },
  };
}
