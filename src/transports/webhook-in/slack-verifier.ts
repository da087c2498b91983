import { createHmac } from 'node:crypto';
import { HeraldError } from '../../core/errors.js';
import {
  checkTolerance,
  field,
  parseForm,
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

const FORM = 'application/x-www-form-urlencoded';

/**
 * Slack (https://api.slack.com/authentication/verifying-requests-from-slack):
 * `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:" + X-Slack-Request-Timestamp + ":" + body>`
 * with the app's signing secret; requests further than the tolerance from now, either way, are
 * refused (replays), and a replay inside it is a duplicate by the digest of the signed bytes
 * (slash commands and interactivity carry no event id of their own).
 * Events API bodies are JSON (retries share an `event_id`); slash commands and interactivity
 * are forms (`payload` holds JSON for the latter).
 */
export function slackVerifier(opts: { secrets: readonly string[]; toleranceSeconds: number }): WebhookVerifier {
  return {
    auditHeaders: ['x-slack-signature', 'x-slack-request-timestamp', 'x-slack-retry-num', 'x-slack-retry-reason', 'content-type'],
    verify(req: InboundRequest): VerifiedWebhook {
      const media = requireJson(req, [FORM]);
      const signature = requireHeader(req, 'x-slack-signature');
      const timestamp = requireHeader(req, 'x-slack-request-timestamp');
      if (!/^v0=[0-9a-f]{64}$/.test(signature) || !/^\d{1,15}$/.test(timestamp)) {
        throw new HeraldError('SIGNATURE_MISSING', 'X-Slack-Signature must be v0=<64 hex digits> with an integer X-Slack-Request-Timestamp');
      }
      checkTolerance(Number(timestamp), req, opts.toleranceSeconds);
      const given = Buffer.from(signature.slice(3), 'hex');
      const base = Buffer.concat([Buffer.from(`v0:${timestamp}:`), req.body]);
      if (!opts.secrets.some((s) => safeEqual(given, createHmac('sha256', s).update(base).digest()))) {
        throw signatureInvalid();
      }
      const text = requireUtf8(req.body);
      const digest = signedDigest(base);
      if (media === FORM) {
        const form = parseForm(text);
        const type = field(form.payload, 'type') ?? (typeof form.command === 'string' ? 'slash_command' : 'form');
        return { id: undefined, type, payload: form, signedDigest: digest };
      }
      const payload = parseJsonText(text);
      if (field(payload, 'type') === 'url_verification') {
        return { id: undefined, type: 'url_verification', payload, challenge: field(payload, 'challenge') ?? '', signedDigest: digest };
      }
      const event = (payload as { event?: unknown } | null)?.event;
      return {
        id: field(payload, 'event_id'),
        type: field(event, 'type') ?? field(payload, 'type') ?? 'event',
        payload,
        signedDigest: digest,
      };
    },
  };
}
