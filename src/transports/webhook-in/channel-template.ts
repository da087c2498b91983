import { checkChannel } from '../../core/channel.js';
import { HeraldError } from '../../core/errors.js';
import { CHANNEL_MAX_BYTES } from '../../core/limits.js';

/** Characters a channel token may not hold become this. */
const REPLACEMENT = '_';

/**
 * Turns a provider's value into channel tokens: `.` and `/` separate tokens (Stripe's
 * `payment_intent.succeeded`, Shopify's `orders/create`), any other character outside
 * `[A-Za-z0-9_:@=-]` becomes `_`, and empty tokens are dropped, so a provider can never make
 * Herald publish to a pattern or an invalid name.
 */
export function channelTokens(value: string): string {
  const tokens = value
    .split(/[./]/)
    .map((t) => t.replace(/[^A-Za-z0-9_:@=-]/g, REPLACEMENT))
    .filter((t) => t !== '');
  return tokens.length === 0 ? REPLACEMENT : tokens.join('.');
}

/** The channel a source's template names for one event (`stripe.{type}` → `stripe.charge.refunded`). */
export function channelFor(template: string, values: { type: string; source: string }): string {
  const channel = template.replace(/\{(type|source)\}/g, (_m, key: 'type' | 'source') => channelTokens(values[key]));
  const check = checkChannel(channel);
  if (!check.ok || check.pattern || Buffer.byteLength(channel) > CHANNEL_MAX_BYTES) {
    throw new HeraldError('WEBHOOK_PAYLOAD_INVALID', `the event maps to an invalid channel name (${check.ok ? 'too long' : check.reason})`);
  }
  return channel;
}

/**
 * The pattern that covers every channel a template can name: a placeholder may expand to several
 * tokens, so the template is cut at its first placeholder token and ends in `>`.
 */
export function channelPatternFor(template: string): string {
  const tokens = template.split('.');
  const i = tokens.findIndex((t) => t.includes('{'));
  return i < 0 ? template : [...tokens.slice(0, i), '>'].join('.');
}
