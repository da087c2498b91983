import { createHmac } from 'node:crypto';
import { HeraldError } from '../../core/errors.js';
import {
  field,
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

export interface HmacOptions {
  secrets: readonly string[];
  /** The header holding the signature (lower case). */
  header: string;
  encoding: 'hex' | 'base64';
  /** Text before the digest in the header (`sha256=`), if any. */
  prefix: string;
  idHeader?: string | undefined;
  typeHeader?: string | undefined;
}

/**
 * Generic HMAC-SHA256 of the raw body, for senders without a published scheme of their own. Only
 * the body is signed (no timestamp, no header), so `idHeader` and `typeHeader` are the sender's
 * word, not its signature: a re-sent body is a duplicate by its digest whatever id it carries,
 * and a `typeHeader` reaches a channel template only when the source opts in.
 */
export function hmacVerifier(opts: HmacOptions): WebhookVerifier {
  const digestLength = opts.encoding === 'hex' ? 64 : 44;
  return {
    auditHeaders: [opts.header, ...(opts.idHeader ? [opts.idHeader] : []), ...(opts.typeHeader ? [opts.typeHeader] : []), 'content-type'],
    verify(req: InboundRequest): VerifiedWebhook {
      requireJson(req);
      const value = requireHeader(req, opts.header);
      const digest = value.startsWith(opts.prefix) ? value.slice(opts.prefix.length) : '';
      const shape = opts.encoding === 'hex' ? /^[0-9a-fA-F]+$/ : /^[A-Za-z0-9+/]+={0,2}$/;
      if (digest.length !== digestLength || !shape.test(digest)) {
        throw new HeraldError(
          'SIGNATURE_MISSING',
          `${opts.header} must be ${opts.prefix}<${opts.encoding} HMAC-SHA256 of the body>`,
        );
      }
      const given = Buffer.from(digest, opts.encoding);
      if (!opts.secrets.some((s) => safeEqual(given, createHmac('sha256', s).update(req.body).digest()))) {
        throw signatureInvalid();
      }
      return describe(req, parseJsonText(requireUtf8(req.body)), opts, signedDigest(req.body));
    },
  };
}

/** Id and type of a generic webhook: from the configured headers, else the payload's fields. */
export function describe(
  req: InboundRequest,
  payload: unknown,
  opts: { idHeader?: string | undefined; typeHeader?: string | undefined },
  digest: string | undefined,
): VerifiedWebhook {
  const id = opts.idHeader ? header(req, opts.idHeader) : undefined;
  const type = (opts.typeHeader ? header(req, opts.typeHeader) : undefined) ?? field(payload, 'type') ?? field(payload, 'event') ?? 'webhook';
  return { id, type, payload, signedDigest: digest };
}
