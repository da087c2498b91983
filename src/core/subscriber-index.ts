import { isPattern } from './channel.js';

/**
 * Finds the subscribers of a channel: exact names in a Map (one lookup), wildcard patterns in a
 * token trie (one walk per event, however many patterns there are).
 */
export class SubscriberIndex<S> {
  readonly #exact = new Map<string, Set<S>>();
  readonly #root = new TrieNode<S>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(pattern: string, sub: S): void {
    if (!isPattern(pattern)) {
      let set = this.#exact.get(pattern);
      if (!set) this.#exact.set(pattern, (set = new Set()));
      if (!set.has(sub)) this.#size++;
      set.add(sub);
      return;
    }
    let node = this.#root;
    for (const token of pattern.split('.')) {
      if (token === '>') {
        if (!node.rest.has(sub)) this.#size++;
        node.rest.add(sub);
        return;
      }
      let next = node.children.get(token);
      if (!next) node.children.set(token, (next = new TrieNode()));
      node = next;
    }
    if (!node.here.has(sub)) this.#size++;
    node.here.add(sub);
  }

  remove(pattern: string, sub: S): void {
    if (!isPattern(pattern)) {
      const set = this.#exact.get(pattern);
      if (set?.delete(sub)) this.#size--;
      if (set && set.size === 0) this.#exact.delete(pattern);
      return;
    }
    const path: [TrieNode<S>, string][] = [];
    let node: TrieNode<S> | undefined = this.#root;
    for (const token of pattern.split('.')) {
      if (token === '>') {
        if (node.rest.delete(sub)) this.#size--;
        break;
      }
      const next: TrieNode<S> | undefined = node.children.get(token);
      if (!next) return;
      path.push([node, token]);
      node = next;
    }
    if (!pattern.endsWith('>') && node.here.delete(sub)) this.#size--;
    // Drop empty branches so a churn of one-off patterns does not grow the trie for ever.
    for (let i = path.length - 1; i >= 0; i--) {
      const [parent, token] = path[i]!;
      const child = parent.children.get(token)!;
      if (!child.empty) break;
      parent.children.delete(token);
    }
  }

  /** Calls `fn` for each (subscriber, pattern) entry matching the channel name. */
  forEachMatch(channel: string, fn: (sub: S) => void): void {
    const exact = this.#exact.get(channel);
    if (exact) for (const s of exact) fn(s);
    if (this.#root.children.size === 0 && this.#root.rest.size === 0) return;
    walk(this.#root, channel.split('.'), 0, fn);
  }

  /** Calls `fn` once for every subscriber in the index, whatever its patterns. */
  forEachSubscriber(fn: (sub: S) => void): void {
    const seen = new Set<S>();
    const visit = (s: S) => {
      if (seen.has(s)) return;
      seen.add(s);
      fn(s);
    };
    for (const set of this.#exact.values()) set.forEach(visit);
    const stack = [this.#root];
    for (let node = stack.pop(); node; node = stack.pop()) {
      node.here.forEach(visit);
      node.rest.forEach(visit);
      for (const child of node.children.values()) stack.push(child);
    }
  }
}

class TrieNode<S> {
  readonly children = new Map<string, TrieNode<S>>();
  /** Patterns that end at this node. */
  readonly here = new Set<S>();
  /** Patterns that end in `>` at this node: match one or more further tokens. */
  readonly rest = new Set<S>();

  get empty(): boolean {
    return this.children.size === 0 && this.here.size === 0 && this.rest.size === 0;
  }
}

function walk<S>(node: TrieNode<S>, tokens: string[], i: number, fn: (sub: S) => void): void {
  if (i === tokens.length) {
    for (const s of node.here) fn(s);
    return;
  }
  for (const s of node.rest) fn(s);
  const literal = node.children.get(tokens[i]!);
  if (literal) walk(literal, tokens, i + 1, fn);
  const star = node.children.get('*');
  if (star) walk(star, tokens, i + 1, fn);
}

/**
 * A predicate for "does this channel match any of `patterns`", built once per read: a Set lookup
 * for names, one trie walk for all the wildcards, instead of splitting the channel and trying
 * every pattern on every row of a scan (100 patterns cost one walk, not 100 matches).
 */
export function channelMatcher(patterns: readonly string[]): (channel: string) => boolean {
  const index = new SubscriberIndex<true>();
  for (const p of patterns) index.add(p, true);
  return (channel) => {
    let hit = false;
    index.forEachMatch(channel, () => (hit = true));
    return hit;
  };
}
