import { CHANNEL_MAX_BYTES } from './limits.js';

/**
 * Channel names and subscription patterns.
 *
 * A name is 1..255 bytes of tokens of `[A-Za-z0-9_:@=-]` joined by `.`: `orders`,
 * `user.42.notifications`, `chat.room-1`. A pattern may also use NATS-style wildcards as whole
 * tokens: `*` matches exactly one token, `>` (last token only) matches one or more trailing
 * tokens. Only names can be published to.
 */

const TOKEN = /^[A-Za-z0-9_:@=-]+$/;

export type ChannelCheck = { ok: true; pattern: boolean } | { ok: false; reason: string };

/** Checks a channel name or pattern, without throwing. The token check keeps names ASCII. */
export function checkChannel(value: unknown): ChannelCheck {
  if (typeof value !== 'string') return { ok: false, reason: 'channel must be a string' };
  if (value.length === 0) return { ok: false, reason: 'channel must not be empty' };
  if (value.length > CHANNEL_MAX_BYTES) {
    return { ok: false, reason: `channel must be at most ${CHANNEL_MAX_BYTES} bytes` };
  }
  const tokens = value.split('.');
  let pattern = false;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t === '*') {
      pattern = true;
    } else if (t === '>') {
      if (i !== tokens.length - 1) return { ok: false, reason: '">" may only be the last token' };
      pattern = true;
    } else if (!TOKEN.test(t)) {
      return {
        ok: false,
        reason:
          t.length === 0
            ? 'channel has an empty token (leading, trailing or double ".")'
            : 'channel tokens may only hold A-Z a-z 0-9 _ : @ = -',
      };
    }
  }
  return { ok: true, pattern };
}

export function isPattern(valid: string): boolean {
  return valid.includes('*') || valid.includes('>');
}

/** True when the channel name matches the pattern (a name matches itself). */
export function matches(pattern: string, channel: string): boolean {
  if (!isPattern(pattern)) return pattern === channel;
  const p = pattern.split('.');
  const c = channel.split('.');
  for (let i = 0; i < p.length; i++) {
    const t = p[i]!;
    if (t === '>') return c.length > i;
    if (i >= c.length) return false;
    if (t !== '*' && t !== c[i]) return false;
  }
  return p.length === c.length;
}

/** The literal prefix before the first wildcard token (`orders.` for `orders.*`), for range scans. */
export function literalPrefix(pattern: string): string {
  const tokens = pattern.split('.');
  const literal: string[] = [];
  for (const t of tokens) {
    if (t === '*' || t === '>') break;
    literal.push(t);
  }
  return literal.length === 0 ? '' : literal.join('.') + '.';
}
