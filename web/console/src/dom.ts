/**
 * A small element builder. Text is always set as text (never parsed as markup): events, payloads
 * and response bodies come from outside, and one of them must never become a script in the page.
 */
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | ((ev: Event) => void) | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

/** Replaces every child of `el`. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** `2026-12-07T14:03:05.120Z` as local `14:03:05`, with the full time on hover. */
export function time(iso: string | null | undefined): HTMLElement {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  return h('time', { datetime: iso, title: d.toLocaleString() }, d.toLocaleTimeString());
}

export function badge(text: string, kind = text): HTMLElement {
  return h('span', { class: `badge ${kind}` }, text);
}

/** JSON shown as indented text in a <pre>: a payload viewer that never renders markup. */
export function jsonView(value: unknown): HTMLElement {
  return h('pre', { class: 'json' }, JSON.stringify(value, null, 2));
}

/** A table with a header row; `rows` are arrays of cells. */
export function table(headers: string[], rows: HTMLTableRowElement[], empty = 'Nothing yet.'): HTMLElement {
  const body = h('tbody');
  if (rows.length === 0) body.append(h('tr', { class: 'empty' }, h('td', { colspan: headers.length }, empty)));
  else body.append(...rows);
  return h('table', {}, h('thead', {}, h('tr', {}, ...headers.map((t) => h('th', {}, t)))), body);
}

export function row(cells: Child[], attrs: Attrs = {}): HTMLTableRowElement {
  return h('tr', attrs, ...cells.map((c) => h('td', {}, c)));
}
