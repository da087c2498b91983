/**
 * Event ids are `<epoch>-<seq>`: within one epoch (one log) the seq orders them. An id of another
 * epoch is treated as newer: the server answers such a position with a reset anyway.
 */
export function isAfter(id: string, than: string | undefined): boolean {
  if (than === undefined) return true;
  const i = id.lastIndexOf('-');
  const j = than.lastIndexOf('-');
  if (id.slice(0, i + 1) !== than.slice(0, j + 1)) return true;
  return Number(id.slice(i + 1)) > Number(than.slice(j + 1));
}

/** The earlier of two positions (undefined, "from now", loses to any id). */
export function earlier(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return isAfter(a, b) ? b : a;
}

/** Herald's channel patterns: `*` is one dot-separated token, `>` one or more trailing tokens. */
export function matches(pattern: string, channel: string): boolean {
  const p = pattern.split('.');
  const c = channel.split('.');
  for (let i = 0; i < p.length; i++) {
    const t = p[i];
    if (t === '>') return c.length > i;
    if (i >= c.length || (t !== '*' && t !== c[i])) return false;
  }
  return p.length === c.length;
}
