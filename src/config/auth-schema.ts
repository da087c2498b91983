import { z } from 'zod';
import { checkChannel } from '../core/channel.js';
import { DEFAULTS } from './defaults.js';
import { publicKeyProblem } from './jwt-key.js';

/**
 * The config schema of `auth`, `presence` and `trustProxy` (docs/auth.md). src/config/schema.ts
 * puts these into the whole file's schema.
 */

/** RFC 7518 3.2: an HS256 key must be at least as long as the hash output (256 bits). */
export const JWT_SECRET_MIN_BYTES = 32;
/** A shorter API key is guessable; 16 characters of a random string is the floor. */
export const API_KEY_MIN_CHARS = 16;

const pattern = z.string().refine((s) => checkChannel(s).ok, 'must be a channel name or pattern');

/** `admin`, `publish:<pattern>` or `subscribe:<pattern>`. */
const scope = z.string().refine((s) => {
  if (s === 'admin') return true;
  const m = /^(publish|subscribe):(.+)$/.exec(s);
  return m !== null && checkChannel(m[2]).ok;
}, 'must be "admin", "publish:<channel pattern>" or "subscribe:<channel pattern>"');

const apiKey = z
  .object({
    /** The key itself (keep the file private), or ... */
    key: z.string().min(API_KEY_MIN_CHARS, `an API key needs at least ${API_KEY_MIN_CHARS} characters`).optional(),
    /** ... its SHA-256 digest in hex, so the config file holds no secret. */
    keySha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits (the SHA-256 of the key)')
      .optional(),
    /** A label for logs and rate limits; the key itself is never logged. */
    name: z.string().min(1).max(64).optional(),
    scopes: z.array(scope).min(1),
  })
  .strict()
  .refine((k) => (k.key === undefined) !== (k.keySha256 === undefined), {
    message: 'give exactly one of "key" and "keySha256"',
  });

const jwt = z
  .object({
    secret: z
      .string()
      .refine((s) => Buffer.byteLength(s) >= JWT_SECRET_MIN_BYTES, `an HMAC secret needs at least ${JWT_SECRET_MIN_BYTES} bytes`)
      .optional(),
    publicKey: z
      .string()
      .includes('-----BEGIN PUBLIC KEY-----', { message: 'must be a PEM public key (SPKI)' })
      .superRefine((pem, ctx) => {
        const problem = publicKeyProblem(pem);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `is not a usable PEM public key: ${problem}` });
      })
      .optional(),
    jwksUrl: z.url({ protocol: /^https?$/ }).optional(),
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    issuer: z.string().min(1).optional(),
    clockToleranceSeconds: z.number().nonnegative().default(DEFAULTS.jwt.clockToleranceSeconds),
    jwksCacheSeconds: z.number().positive().default(DEFAULTS.jwt.jwksCacheSeconds),
  })
  .strict()
  .refine((j) => [j.secret, j.publicKey, j.jwksUrl].filter((v) => v !== undefined).length === 1, {
    message: 'give exactly one of "secret", "publicKey" and "jwksUrl"',
  });

export const authSchema = z
  .object({
    apiKeys: z.array(apiKey).default([]),
    jwt: jwt.optional(),
    publicChannels: z.array(pattern).default(DEFAULTS.auth.publicChannels),
    cookieName: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 of A-Z a-z 0-9 _ -')
      .default(DEFAULTS.auth.cookieName),
  })
  .strict();

export const presenceSchema = z
  .object({
    channels: z.array(pattern).default(DEFAULTS.presence.channels),
    leaveDelaySeconds: z.number().nonnegative().default(DEFAULTS.presence.leaveDelaySeconds),
  })
  .strict();

export const trustProxySchema = z.union([z.boolean(), z.number().int().min(1).max(16)]).default(DEFAULTS.trustProxy);

export type AuthConfig = z.infer<typeof authSchema>;
export type JwtConfig = NonNullable<AuthConfig['jwt']>;
export type ApiKeyConfig = AuthConfig['apiKeys'][number];
