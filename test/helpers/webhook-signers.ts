import { createHmac, createSign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { githubRequest, standardRequest, stripeRequest, type SignedRequest } from '../../src/cli/webhook-signers.js';
import { packageRoot } from '../../src/http/routes/pages.js';

/**
 * Signed requests as each provider sends them. Stripe, Standard Webhooks and GitHub come from the
 * product (src/cli/webhook-signers.ts, behind `herald webhooks send`), so tests and the CLI sign
 * with one implementation; the providers the CLI does not send are signed here.
 */
export { githubRequest, standardRequest, stripeRequest, type SignedRequest };

const JSON_TYPE = { 'content-type': 'application/json' };

/** https://shopify.dev/docs/apps/build/webhooks/subscribe/https (HMAC-SHA256, base64). */
export function shopifyRequest(payload: unknown, secret: string, topic: string, eventId: string): SignedRequest {
  const body = JSON.stringify(payload);
  return {
    body,
    headers: {
      ...JSON_TYPE,
      'x-shopify-topic': topic,
      'x-shopify-event-id': eventId,
      'x-shopify-hmac-sha256': createHmac('sha256', secret).update(body).digest('base64'),
    },
  };
}

/** https://api.slack.com/authentication/verifying-requests-from-slack */
export function slackRequest(
  body: string,
  secret: string,
  timestamp = Math.floor(Date.now() / 1000),
  contentType = 'application/json',
): SignedRequest {
  return {
    body,
    headers: {
      'content-type': contentType,
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': 'v0=' + createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex'),
    },
  };
}

/** The test-only key pair and self-signed certificate in test/fixtures (openssl req -x509). */
export const PAYPAL_TEST_CERT = join(packageRoot(), 'test/fixtures/paypal-test-cert.pem');
const PAYPAL_TEST_KEY = join(packageRoot(), 'test/fixtures/paypal-test-key.pem');

/**
 * PayPal's self-verification scheme: RSA-SHA256 over
 * `transmission_id|transmission_time|webhook_id|crc32(body)`, signed here with the test key.
 */
export function paypalRequest(payload: unknown, webhookId: string, transmissionId: string, at = new Date()): SignedRequest {
  const body = JSON.stringify(payload);
  const time = at.toISOString();
  const crc = (zlib as unknown as { crc32: (b: Buffer) => number }).crc32(Buffer.from(body));
  const signer = createSign('sha256');
  signer.update(`${transmissionId}|${time}|${webhookId}|${crc}`);
  return {
    body,
    headers: {
      ...JSON_TYPE,
      'paypal-transmission-id': transmissionId,
      'paypal-transmission-time': time,
      'paypal-transmission-sig': signer.sign(readFileSync(PAYPAL_TEST_KEY), 'base64'),
      'paypal-cert-url': 'https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-test',
      'paypal-auth-algo': 'SHA256withRSA',
    },
  };
}

export function hmacRequest(payload: unknown, secret: string, headers: Record<string, string> = {}): SignedRequest {
  const body = JSON.stringify(payload);
  return {
    body,
    headers: { ...JSON_TYPE, ...headers, 'x-signature': createHmac('sha256', secret).update(body).digest('hex') },
  };
}

/** POSTs a signed request; returns status and parsed JSON body. */
export async function send(url: string, req: SignedRequest): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', headers: req.headers, body: req.body });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}
