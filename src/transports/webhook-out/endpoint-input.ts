import { isIP } from 'node:net';
import { checkChannel } from '../../core/channel.js';
import { HeraldError } from '../../core/errors.js';
import { HEADER_NAME, isEventType } from '../../core/event.js';
import { TYPE_MAX_BYTES } from '../../core/limits.js';
import type { Ordering } from '../../core/delivery-store.js';
import { isForbiddenAddress } from './ssrf-guard.js';

/** Characters of an endpoint URL: a URL is an index-free column, but logs and views show it. */
export const ENDPOINT_URL_MAX_CHARS = 2_048;
/** Channel patterns per endpoint: each event is matched against every one. */
export const ENDPOINT_CHANNELS_MAX = 100;
/** Event types per endpoint filter. */
export const ENDPOINT_TYPES_MAX = 100;
/** Characters of a description. */
export const ENDPOINT_DESCRIPTION_MAX_CHARS = 1_024;
/** Custom headers per endpoint, and their sizes: they travel with every request. */
export const ENDPOINT_HEADERS_MAX = 20;
export const HEADER_NAME_MAX_CHARS = 256;
export const HEADER_VALUE_MAX_CHARS = 4_096;
/** Upper bound of an endpoint's `maxConcurrency`. */
export const ENDPOINT_CONCURRENCY_MAX = 1_000;

/**
 * RFC 9110 §5.5: a field value is HTAB, SP, visible ASCII and obs-text (0x80-0xFF), nothing else.
 * A value outside it (CR/LF: request splitting; U+0100 and above: no single byte to send) is
 * refused by the HTTP client on every delivery, so it is refused here, once, at creation.
 */
const NOT_FIELD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** Headers Herald sets itself: an endpoint may not replace its signature or framing. */
const RESERVED_HEADER = /^(webhook-.*|content-type|content-length|transfer-encoding|host|connection|keep-alive|upgrade|te|trailer|expect|user-agent)$/i;

export interface EndpointInput {
  url: string;
  channels: string[];
  types: string[] | null;
  description: string;
  headers: Record<string, string>;
  ordering: Ordering;
  maxConcurrency: number | null;
}

export interface EndpointPatch extends Partial<EndpointInput> {
  enabled?: boolean;
}

const CREATE_KEYS = new Set(['url', 'channels', 'types', 'description', 'headers', 'ordering', 'maxConcurrency']);
const PATCH_KEYS = new Set([...CREATE_KEYS, 'enabled']);

/**
 * The trust line for endpoint definitions (`POST /v1/endpoints`): every field checked, unknown
 * fields refused. An IP literal in a forbidden range is refused here already; host names are
 * checked when connecting (their answers can change).
 */
export function toEndpointInput(raw: unknown, allowPrivateTargets: boolean): EndpointInput {
  const o = objectOf(raw, CREATE_KEYS);
  if (o.url === undefined) throw new HeraldError('URL_INVALID', '"url" is required');
  if (o.channels === undefined) throw new HeraldError('CHANNEL_INVALID', '"channels" is required (a list of channel patterns)');
  return {
    url: checkUrl(o.url, allowPrivateTargets),
    channels: checkChannels(o.channels),
    types: o.types === undefined || o.types === null ? null : checkTypes(o.types),
    description: o.description === undefined ? '' : checkDescription(o.description),
    headers: o.headers === undefined ? {} : checkHeaders(o.headers),
    ordering: o.ordering === undefined ? 'parallel' : checkOrdering(o.ordering),
    maxConcurrency: o.maxConcurrency === undefined || o.maxConcurrency === null ? null : checkConcurrency(o.maxConcurrency),
  };
}

/** The trust line for `PATCH /v1/endpoints/{id}`: only the fields present are changed. */
export function toEndpointPatch(raw: unknown, allowPrivateTargets: boolean): EndpointPatch {
  const o = objectOf(raw, PATCH_KEYS);
  const p: EndpointPatch = {};
  if (o.url !== undefined) p.url = checkUrl(o.url, allowPrivateTargets);
  if (o.channels !== undefined) p.channels = checkChannels(o.channels);
  if (o.types !== undefined) p.types = o.types === null ? null : checkTypes(o.types);
  if (o.description !== undefined) p.description = checkDescription(o.description);
  if (o.headers !== undefined) p.headers = checkHeaders(o.headers);
  if (o.ordering !== undefined) p.ordering = checkOrdering(o.ordering);
  if (o.maxConcurrency !== undefined) p.maxConcurrency = o.maxConcurrency === null ? null : checkConcurrency(o.maxConcurrency);
  if (o.enabled !== undefined) {
    if (typeof o.enabled !== 'boolean') throw new HeraldError('BODY_INVALID', '"enabled" must be true or false');
    p.enabled = o.enabled;
  }
  return p;
}

function objectOf(raw: unknown, keys: Set<string>): Record<string, unknown> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new HeraldError('BODY_INVALID', 'the body must be a JSON object');
  }
  for (const k of Object.keys(raw)) {
    if (!keys.has(k)) throw new HeraldError('BODY_INVALID', `unknown field "${k}"; known: ${[...keys].join(', ')}`);
  }
  return raw as Record<string, unknown>;
}

/** Checks an endpoint URL: absolute, http or https, no credentials, not a forbidden IP literal. */
export function checkUrl(value: unknown, allowPrivateTargets: boolean): string {
  if (typeof value !== 'string' || value.length === 0) throw new HeraldError('URL_INVALID', '"url" must be a non-empty string');
  if (value.length > ENDPOINT_URL_MAX_CHARS) {
    throw new HeraldError('URL_INVALID', `"url" must be at most ${ENDPOINT_URL_MAX_CHARS} characters`);
  }
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new HeraldError('URL_INVALID', `"url" is not an absolute URL: ${JSON.stringify(value.slice(0, 100))}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new HeraldError('URL_INVALID', `"url" must use http or https, not ${u.protocol.slice(0, -1)}`);
  }
  if (u.username || u.password) {
    // Credentials in a URL end up in logs and views; custom headers are the place for them.
    throw new HeraldError('URL_INVALID', '"url" must not carry credentials; use "headers" instead');
  }
  if (u.hash) throw new HeraldError('URL_INVALID', '"url" must not have a #fragment');
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  if (!allowPrivateTargets && isIP(host) && isForbiddenAddress(host)) {
    throw new HeraldError('TARGET_FORBIDDEN', `${host} is not a public address (SSRF guard; outbound.allowPrivateTargets is false)`);
  }
  return u.href;
}

function checkChannels(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new HeraldError('CHANNEL_INVALID', '"channels" must be a non-empty list of channel names or patterns');
  }
  if (value.length > ENDPOINT_CHANNELS_MAX) {
    throw new HeraldError('CHANNEL_INVALID', `"channels" holds at most ${ENDPOINT_CHANNELS_MAX} patterns`);
  }
  for (const c of value) {
    const check = checkChannel(c);
    if (!check.ok) throw new HeraldError('CHANNEL_INVALID', `${JSON.stringify(c)}: ${check.reason}`);
  }
  return [...new Set(value as string[])];
}

function checkTypes(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > ENDPOINT_TYPES_MAX) {
    throw new HeraldError('TYPE_INVALID', `"types" must be null or a list of 1 to ${ENDPOINT_TYPES_MAX} event types`);
  }
  for (const t of value) {
    if (!isEventType(t)) {
      throw new HeraldError('TYPE_INVALID', `${JSON.stringify(t)}: an event type is 1 to ${TYPE_MAX_BYTES} bytes without control characters`);
    }
  }
  return [...new Set(value as string[])];
}

function checkDescription(value: unknown): string {
  if (typeof value !== 'string' || value.length > ENDPOINT_DESCRIPTION_MAX_CHARS) {
    throw new HeraldError('BODY_INVALID', `"description" must be a string of at most ${ENDPOINT_DESCRIPTION_MAX_CHARS} characters`);
  }
  return value;
}

function checkHeaders(value: unknown): Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HeraldError('BODY_INVALID', '"headers" must be an object of header names to string values');
  }
  const entries = Object.entries(value);
  if (entries.length > ENDPOINT_HEADERS_MAX) throw new HeraldError('BODY_INVALID', `"headers" holds at most ${ENDPOINT_HEADERS_MAX} headers`);
  const out: Record<string, string> = {};
  for (const [name, v] of entries) {
    if (!HEADER_NAME.test(name) || name.length > HEADER_NAME_MAX_CHARS) {
      throw new HeraldError('BODY_INVALID', `header name ${JSON.stringify(name.slice(0, 100))} is not an HTTP token`);
    }
    if (RESERVED_HEADER.test(name)) throw new HeraldError('BODY_INVALID', `header ${name} is set by Herald and cannot be overridden`);
    if (typeof v !== 'string' || v.length > HEADER_VALUE_MAX_CHARS) {
      throw new HeraldError('BODY_INVALID', `header ${name}: the value must be a string of at most ${HEADER_VALUE_MAX_CHARS} characters`);
    }
    const bad = NOT_FIELD_VALUE.exec(v);
    if (bad) {
      const at = `U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
      throw new HeraldError(
        'BODY_INVALID',
        `header ${name}: the value holds ${at} at position ${bad.index}; an HTTP field value is tab, space, visible ASCII and Latin-1 (RFC 9110 §5.5)`,
      );
    }
    out[name.toLowerCase()] = v;
  }
  return out;
}

function checkOrdering(value: unknown): Ordering {
  if (value !== 'parallel' && value !== 'ordered') throw new HeraldError('BODY_INVALID', '"ordering" must be "parallel" or "ordered"');
  return value;
}

function checkConcurrency(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > ENDPOINT_CONCURRENCY_MAX) {
    throw new HeraldError('BODY_INVALID', `"maxConcurrency" must be an integer from 1 to ${ENDPOINT_CONCURRENCY_MAX}`);
  }
  return value;
}
