import { verify as verifySignature } from 'node:crypto';
import * as zlib from 'node:zlib';
import { HeraldError } from '../../core/errors.js';
import type { PaypalCertificates } from './paypal-certificates.js';
import {
  checkTolerance,
  header,
  parseJsonText,
  requireField,
  requireHeader,
  requireJson,
  requireUtf8,
  signatureInvalid,
  signedDigest,
  type InboundRequest,
  type VerifiedWebhook,
  type WebhookVerifier,
} from './verifier.js';

/**
 * PayPal (https://developer.paypal.com/api/rest/webhooks/rest/#link-selfverificationmethod):
 * `PAYPAL-TRANSMISSION-SIG` is an RSA-SHA256 signature (base64) over
 * `<transmission id>|<transmission time>|<webhook id>|<CRC32 of the raw body, decimal>`, made
 * with the key of the certificate at `PAYPAL-CERT-URL`. The "secret" is the webhook id PayPal
 * assigned to this endpoint: it binds a signature to this receiver. No maintained library does
 * this offline, so it follows the published spec.
 */
export function paypalVerifier(opts: {
  webhookIds: readonly string[];
  toleranceSeconds: number;
  certificates: PaypalCertificates;
}): WebhookVerifier {
  return {
    auditHeaders: [
      'paypal-transmission-id', 'paypal-transmission-time', 'paypal-transmission-sig',
      'paypal-cert-url', 'paypal-auth-algo', 'content-type',
    ],
    async verify(req: InboundRequest): Promise<VerifiedWebhook> {
      requireJson(req);
      const transmissionId = requireHeader(req, 'paypal-transmission-id');
      const transmissionTime = requireHeader(req, 'paypal-transmission-time');
      const signature = requireHeader(req, 'paypal-transmission-sig');
      const algo = header(req, 'paypal-auth-algo') ?? 'SHA256withRSA';
      if (algo !== 'SHA256withRSA') {
        throw new HeraldError('SIGNATURE_MISSING', `paypal-auth-algo ${algo} is not supported (SHA256withRSA is)`);
      }
      if (/[|\r\n]/.test(transmissionId + transmissionTime) || !/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) {
        throw new HeraldError('SIGNATURE_MISSING', 'the PayPal transmission headers are malformed');
      }
      const sentAt = Date.parse(transmissionTime);
      if (Number.isNaN(sentAt)) throw new HeraldError('SIGNATURE_MISSING', 'paypal-transmission-time is not a date');
      checkTolerance(sentAt / 1000, req, opts.toleranceSeconds);
      const key = await opts.certificates.key(header(req, 'paypal-cert-url'), req.receivedAt);
      const sig = Buffer.from(signature, 'base64');
      const crc = crc32(req.body);
      const signed = opts.webhookIds
        .map((webhookId) => Buffer.from(`${transmissionId}|${transmissionTime}|${webhookId}|${crc}`))
        .find((message) => verifySignature('sha256', message, key, sig));
      if (!signed) throw signatureInvalid();
      const payload = parseJsonText(requireUtf8(req.body));
      return {
        id: requireField(payload, 'id', 'PayPal'),
        type: requireField(payload, 'event_type', 'PayPal'),
        payload,
        // The body is covered only through its CRC-32, which is no cryptographic hash: another
        // body with the same CRC can be made at will. The digest of the signed line (transmission
        // id, time, webhook id, CRC) makes any second body under one transmission a duplicate.
        signedDigest: signedDigest(signed),
      };
    },
  };
}

let table: Uint32Array | undefined;

/** CRC-32 (ISO-HDLC, as zlib) of the bytes, unsigned; zlib.crc32 where Node has it (20.15+). */
export function crc32(bytes: Buffer): number {
  const native = (zlib as { crc32?: (b: Buffer) => number }).crc32;
  if (native) return native(bytes);
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = table[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
