import { X509Certificate, type KeyObject } from 'node:crypto';
import { HeraldError } from '../../core/errors.js';

/** Milliseconds a certificate download may take before the webhook is answered 503 (retried). */
export const CERT_FETCH_TIMEOUT_MS = 5_000;
/** Bytes: a PEM certificate is a few KiB; anything far larger is not one. */
export const CERT_MAX_BYTES = 64 * 1024;
/** Certificates cached by URL; PayPal rotates rarely, so a handful covers every key in use. */
export const CERT_CACHE_ENTRIES = 16;

/** True for https URLs on paypal.com or one of its subdomains: the only hosts trusted for keys. */
export function isPaypalCertUrl(raw: string): boolean {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  const host = url.hostname.toLowerCase();
  return url.protocol === 'https:' && url.port === '' && (host === 'paypal.com' || host.endsWith('.paypal.com'));
}

/**
 * PayPal's signing certificates. A pinned certificate (a PEM file named in config) is used for
 * every request and nothing is fetched; otherwise the certificate is downloaded from the
 * request's `PAYPAL-CERT-URL`, but only over https from a paypal.com host (an attacker-chosen URL
 * would let anyone sign), and cached by URL.
 */
export class PaypalCertificates {
  readonly #pinned: X509Certificate | undefined;
  readonly #cache = new Map<string, Promise<X509Certificate>>();
  readonly #fetch: typeof fetch;

  constructor(opts: { pinnedPem?: string | Buffer | undefined; fetch?: typeof fetch } = {}) {
    this.#pinned = opts.pinnedPem === undefined ? undefined : new X509Certificate(opts.pinnedPem);
    this.#fetch = opts.fetch ?? fetch;
  }

  /** The public key to check a signature with, valid at `now` (ms). */
  async key(certUrl: string | undefined, now: number): Promise<KeyObject> {
    const cert = this.#pinned ?? (await this.#download(certUrl));
    if (now < Date.parse(cert.validFrom) || now > Date.parse(cert.validTo)) {
      throw new HeraldError('SIGNATURE_INVALID', 'the PayPal signing certificate is not valid at this time');
    }
    return cert.publicKey;
  }

  #download(certUrl: string | undefined): Promise<X509Certificate> {
    if (certUrl === undefined) throw new HeraldError('SIGNATURE_MISSING', 'the paypal-cert-url header is missing');
    if (!isPaypalCertUrl(certUrl)) {
      throw new HeraldError('SIGNATURE_INVALID', 'paypal-cert-url must be an https URL on a paypal.com host');
    }
    let pending = this.#cache.get(certUrl);
    if (!pending) {
      if (this.#cache.size >= CERT_CACHE_ENTRIES) this.#cache.delete(this.#cache.keys().next().value!);
      pending = this.#get(certUrl);
      this.#cache.set(certUrl, pending);
      // A failed download is not cached: the provider's retry tries again.
      pending.catch(() => this.#cache.delete(certUrl));
    }
    return pending;
  }

  async #get(url: string): Promise<X509Certificate> {
    try {
      const res = await this.#fetch(url, { redirect: 'error', signal: AbortSignal.timeout(CERT_FETCH_TIMEOUT_MS) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = Buffer.from(await res.arrayBuffer());
      if (body.length > CERT_MAX_BYTES) throw new Error('certificate too large');
      return new X509Certificate(body);
    } catch (err) {
      throw new HeraldError('CERTIFICATE_UNAVAILABLE', `the PayPal certificate could not be fetched: ${(err as Error).message}`);
    }
  }
}
