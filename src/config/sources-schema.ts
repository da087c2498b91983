import { z } from 'zod';
import { checkChannel } from '../core/channel.js';
import { HEADER_NAME } from '../core/event.js';
import { DEFAULTS } from './defaults.js';

/** The providers Herald verifies; each has one verifier in src/transports/webhook-in/. */
export const PROVIDERS = ['stripe', 'paypal', 'github', 'shopify', 'slack', 'standard', 'hmac', 'none'] as const;
export type Provider = (typeof PROVIDERS)[number];

/** Source names are a URL path segment (`/v1/webhooks/{name}`) and part of idempotency keys. */
const SOURCE_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** The placeholders a channel template may hold. */
const PLACEHOLDER = /\{(type|source)\}/g;
/**
 * Where each provider's event type comes from when no signature covers it: GitHub and Shopify
 * sign only the body and send the type in a header, and so does a generic `hmac` source with a
 * `typeHeader`. Anyone holding one signed body may put any type there.
 */
const UNSIGNED_TYPE: Partial<Record<Provider, string>> = { github: 'X-GitHub-Event', shopify: 'X-Shopify-Topic' };

const d = DEFAULTS.sources;
const header = z.string().regex(HEADER_NAME, 'must be an HTTP header name').transform((h) => h.toLowerCase());

const sourceSchema = z
  .object({
    provider: z.enum(PROVIDERS),
    /** One secret, or `secrets` for several (rotation). PayPal: the webhook id PayPal assigned. */
    secret: z.string().min(1).optional(),
    secrets: z.array(z.string().min(1)).min(1).optional(),
    /** A channel name, or a template with `{type}` and `{source}`: `stripe.{type}`. */
    channel: z.string().default('{source}'),
    toleranceSeconds: z.number().int().positive().default(d.toleranceSeconds),
    maxBodyBytes: z.number().int().positive().default(d.maxBodyBytes),
    retentionSeconds: z.number().int().positive().default(d.retentionSeconds),
    /** `hmac`: where the signature is and how it is written. */
    header: header.optional(),
    encoding: z.enum(['hex', 'base64']).optional(),
    prefix: z.string().optional(),
    /** `hmac` and `none`: headers carrying the event id (idempotency) and type. */
    idHeader: header.optional(),
    typeHeader: header.optional(),
    /**
     * `github`, `shopify`, `hmac`: let `{type}` in `channel` come from an unsigned header. Off by
     * default: with it, whoever holds one signed body (a log, a proxy, another endpoint with the
     * same secret) picks the channel it is published to.
     */
    unsignedTypeInChannel: z.boolean().default(d.unsignedTypeInChannel),
    /** `paypal`: a PEM certificate pinned instead of fetching PAYPAL-CERT-URL (offline, tests). */
    certificateFile: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const bad = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (s.secret !== undefined && s.secrets !== undefined) bad('secrets', 'give "secret" or "secrets", not both');
    if (s.provider === 'none') {
      if (s.secret !== undefined || s.secrets !== undefined) bad('secret', 'the "none" provider checks no secret');
    } else if (s.secret === undefined && s.secrets === undefined) {
      bad('secret', `the "${s.provider}" provider needs "secret" or "secrets"`);
    }
    const only = (key: keyof typeof s, providers: readonly Provider[]) => {
      if (s[key] !== undefined && !providers.includes(s.provider)) {
        bad(key, `only applies to the ${providers.join(', ')} provider${providers.length > 1 ? 's' : ''}`);
      }
    };
    only('header', ['hmac']);
    only('encoding', ['hmac']);
    only('prefix', ['hmac']);
    only('idHeader', ['hmac', 'none']);
    only('typeHeader', ['hmac', 'none']);
    only('certificateFile', ['paypal']);
    if (s.unsignedTypeInChannel && !['github', 'shopify', 'hmac'].includes(s.provider)) {
      bad('unsignedTypeInChannel', 'only applies to the github, shopify and hmac providers');
    }
    const unsignedType = UNSIGNED_TYPE[s.provider] ?? (s.provider === 'hmac' ? s.typeHeader : undefined);
    if (unsignedType !== undefined && s.channel.includes('{type}') && !s.unsignedTypeInChannel) {
      bad(
        'channel',
        `{type} would come from the ${unsignedType} header, which the ${s.provider} signature does not cover: ` +
          'use a fixed channel, or set "unsignedTypeInChannel": true to accept that a holder of one signed body picks the channel',
      );
    }
    if (s.provider === 'standard') {
      for (const secret of s.secrets ?? [s.secret ?? '']) {
        // Standard Webhooks: the key is the base64 after `whsec_`.
        const b64 = secret.startsWith('whsec_') ? secret.slice(6) : secret;
        if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) bad('secret', 'a Standard Webhooks secret is whsec_ then base64');
      }
    }
    const probe = s.channel.replace(PLACEHOLDER, 'x');
    const check = checkChannel(probe);
    if (!check.ok || check.pattern || probe.includes('{')) {
      bad('channel', 'must be a channel name, optionally with {type} and {source} placeholders');
    }
  })
  .transform((s) => ({
    provider: s.provider,
    secrets: s.secrets ?? (s.secret === undefined ? [] : [s.secret]),
    channel: s.channel,
    toleranceSeconds: s.toleranceSeconds,
    maxBodyBytes: s.maxBodyBytes,
    retentionSeconds: s.retentionSeconds,
    header: s.header ?? d.hmac.header,
    encoding: s.encoding ?? d.hmac.encoding,
    prefix: s.prefix ?? d.hmac.prefix,
    idHeader: s.idHeader,
    typeHeader: s.typeHeader,
    unsignedTypeInChannel: s.unsignedTypeInChannel,
    certificateFile: s.certificateFile,
  }));

/** `sources` in the config file: inbound webhook endpoints by name. */
export const sourcesSchema = z.record(z.string().regex(SOURCE_NAME, 'source names are 1-64 of A-Z a-z 0-9 _ -'), sourceSchema);

export type SourceConfig = z.output<typeof sourceSchema>;
