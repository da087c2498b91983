import { isUtf8 } from 'node:buffer';

/**
 * Channel and type templates for Kafka records: literal text with placeholders.
 *
 * - `{topic}`: the record's topic
 * - `{key}`: the record key as UTF-8 text
 * - `{header.NAME}`: the value of the record header NAME (the last one when it repeats, as
 *   Kafka's own `lastHeader` does)
 * - `{value.PATH}`: a field of the JSON value, PATH being dot-separated object keys or array
 *   indexes (`{value.user.id}`, `{value.items.0.sku}`); only strings, numbers and booleans
 *   resolve
 *
 * Templates are compiled once when the config is loaded; a bad template is a config error. That
 * is why this file lives in config/ although src/sources/ renders them: config sits below the
 * sources in the layers, so the schema may use it and the sources may too.
 * Rendering never throws: a placeholder the record cannot fill makes `render` return undefined
 * with the reason, and the caller rejects the record.
 */

type Part =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'topic' }
  | { readonly kind: 'key' }
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'value'; readonly path: readonly string[] };

/** What a template reads from one record. `json` is the parsed value, when it is JSON. */
export interface TemplateRecord {
  readonly topic: string;
  readonly key: Buffer | undefined;
  /** Header names and values as raw bytes; a header sent with a null value maps to undefined. */
  readonly headers: ReadonlyMap<Buffer, Buffer | undefined>;
  readonly json: { readonly value: unknown } | undefined;
}

export type Rendered = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly reason: string };

const PLACEHOLDER = /\{([^{}]*)\}/g;

export class RecordTemplate {
  readonly source: string;
  readonly #parts: readonly Part[];
  /** The text when the template has no placeholder. */
  readonly constant: string | undefined;

  constructor(source: string) {
    this.source = source;
    this.#parts = parse(source);
    const only = this.#parts[0];
    this.constant = this.#parts.length === 1 && only?.kind === 'text' ? only.text : this.#parts.length === 0 ? '' : undefined;
  }

  /** Fills the placeholders from `record`, or says which one it could not fill. */
  render(record: TemplateRecord): Rendered {
    if (this.constant !== undefined) return { ok: true, text: this.constant };
    let text = '';
    for (const part of this.#parts) {
      switch (part.kind) {
        case 'text':
          text += part.text;
          break;
        case 'topic':
          text += record.topic;
          break;
        case 'key': {
          if (record.key === undefined) return { ok: false, reason: 'the record has no key for {key}' };
          if (!isUtf8(record.key)) return { ok: false, reason: 'the record key is not UTF-8 text' };
          text += record.key.toString('utf8');
          break;
        }
        case 'header': {
          const v = lastHeader(record.headers, part.name);
          if (v === undefined) return { ok: false, reason: `the record has no header "${part.name}"` };
          if (!isUtf8(v)) return { ok: false, reason: `the header "${part.name}" is not UTF-8 text` };
          text += v.toString('utf8');
          break;
        }
        case 'value': {
          const where = `{value.${part.path.join('.')}}`;
          if (!record.json) return { ok: false, reason: `the value is not JSON, so ${where} cannot be read` };
          const v = walk(record.json.value, part.path);
          if (typeof v === 'string') text += v;
          else if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean') text += String(v);
          else return { ok: false, reason: `the value has no string, number or boolean at ${where}` };
          break;
        }
      }
    }
    return { ok: true, text };
  }

  /** True when rendering needs the value parsed as JSON. */
  get readsValue(): boolean {
    return this.#parts.some((p) => p.kind === 'value');
  }
}

function parse(source: string): Part[] {
  const parts: Part[] = [];
  let last = 0;
  for (const m of source.matchAll(PLACEHOLDER)) {
    if (m.index > last) parts.push(literal(source.slice(last, m.index)));
    parts.push(placeholder(m[1]!));
    last = m.index + m[0].length;
  }
  if (last < source.length) parts.push(literal(source.slice(last)));
  return parts;
}

function literal(text: string): Part {
  if (text.includes('{') || text.includes('}')) throw new Error(`unbalanced brace in "${text}"`);
  return { kind: 'text', text };
}

function placeholder(inner: string): Part {
  if (inner === 'topic') return { kind: 'topic' };
  if (inner === 'key') return { kind: 'key' };
  if (inner.startsWith('header.') && inner.length > 'header.'.length) {
    return { kind: 'header', name: inner.slice('header.'.length) };
  }
  if (inner.startsWith('value.')) {
    const path = inner.slice('value.'.length).split('.');
    if (path.every((s) => s.length > 0)) return { kind: 'value', path };
  }
  throw new Error(`unknown placeholder {${inner}} (use {topic}, {key}, {header.NAME} or {value.path})`);
}

function lastHeader(headers: ReadonlyMap<Buffer, Buffer | undefined>, name: string): Buffer | undefined {
  let found: Buffer | undefined;
  for (const [k, v] of headers) if (k.toString('utf8') === name) found = v;
  return found;
}

function walk(value: unknown, path: readonly string[]): unknown {
  let cur = value;
  for (const seg of path) {
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(seg)) return undefined;
      cur = cur[Number(seg)];
    } else if (cur !== null && typeof cur === 'object' && Object.hasOwn(cur, seg)) {
      cur = (cur as Record<string, unknown>)[seg];
    } else {
      return undefined;
    }
  }
  return cur;
}
