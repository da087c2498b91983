/**
 * Reads the fenced examples of a Markdown file and the answers their comments promise, for the
 * doc-examples test (test/e2e/readme-examples.test.ts).
 *
 * - A fenced block is ```` ```sh ```` (or `bash`), ```` ```json ````, or anything else (ignored).
 * - `<!-- not-run: why -->` on the line before a block marks it as not runnable here (a package
 *   from the registry, minutes of benchmark); the test lists it with its reason.
 * - `<!-- needs: kafka -->` marks a block that runs only where that service runs (CI starts it;
 *   elsewhere the test skips it and says how to start it).
 * - In a shell block, a command is a line (with its `\` continuations, or a heredoc up to its
 *   terminator). A comment after it, on its line or on the lines right below, may state the
 *   answer: `# 201 {"id":"k3f9qa-1"}`, `# {"events":[...]}`, `# 401 UNAUTHORIZED`. A comment
 *   without a status, JSON or error code is prose.
 */

export interface Block {
  lang: string;
  text: string;
  /** 1-based line of the opening fence, for messages. */
  line: number;
  /** The reason given by a `<!-- not-run: ... -->` marker, if any. */
  notRun: string | undefined;
  /** The service a `<!-- needs: ... -->` marker names, if any. */
  needs: string | undefined;
}

export interface Expectation {
  status: number | undefined;
  /** The JSON the comment shows, with `{...}` read as "any value" and `,...` as "more keys". */
  json: unknown;
  /** An error code such as `UNAUTHORIZED`. */
  code: string | undefined;
  comment: string;
}

export interface Command {
  text: string;
  expect: Expectation | undefined;
}

/** Stands for an elided value: `{...}` in the docs matches anything. */
export const ANY = '\u0000any';
/** A key present in an object whose documentation ends in `,...`: more keys may follow. */
export const MORE = '\u0000more';

export function fencedBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    let prev = i - 1;
    while (prev >= 0 && lines[prev]!.trim() === '') prev--;
    const marker = prev >= 0 ? /^<!--\s*not-run:\s*(.*?)\s*-->$/.exec(lines[prev]!.trim()) : null;
    const needs = prev >= 0 ? /^<!--\s*needs:\s*(\S+)\s*-->$/.exec(lines[prev]!.trim()) : null;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    blocks.push({ lang: open[1]!, text: body.join('\n'), line: start + 1, notRun: marker ? marker[1] : undefined, needs: needs?.[1] });
  }
  return blocks;
}

/** Splits a shell block into commands, each with the answer its comment states. */
export function shellCommands(text: string): Command[] {
  const lines = text.split('\n');
  const commands: Command[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    if (/^\s*#/.test(line)) {
      const last = commands.at(-1);
      const e = expectation(line.replace(/^\s*#\s?/, ''));
      if (last && last.expect === undefined && e) last.expect = e;
      continue;
    }
    const parts = [line];
    const heredoc = /<<-?'?(\w+)'?/.exec(line);
    if (heredoc) {
      while (i + 1 < lines.length && lines[i]!.trim() !== heredoc[1]) parts.push(lines[++i]!);
    } else {
      while (lines[i]!.endsWith('\\') && i + 1 < lines.length) parts.push(lines[++i]!);
    }
    let cmd = parts.join('\n');
    let expect: Expectation | undefined;
    const trailing = heredoc ? null : /^(.*?\S)\s+#\s(.*)$/s.exec(cmd);
    if (trailing && evenQuotes(trailing[1]!)) {
      cmd = trailing[1]!;
      expect = expectation(trailing[2]!);
    }
    commands.push({ text: cmd, expect });
  }
  return commands;
}

function evenQuotes(s: string): boolean {
  return (s.match(/'/g) ?? []).length % 2 === 0 && (s.match(/"/g) ?? []).length % 2 === 0;
}

/** The answer a comment states, or undefined for prose. */
export function expectation(comment: string): Expectation | undefined {
  const c = comment.trim();
  const m = /^(\d{3})(?:\s+|$)(.*)$/s.exec(c);
  const status = m ? Number(m[1]) : undefined;
  const rest = m ? m[2]! : c;
  if (rest.startsWith('{') || rest.startsWith('[')) {
    return { status, json: parseDocJson(balanced(rest)), code: undefined, comment: c };
  }
  const code = /^([A-Z][A-Z_]{2,})\b/.exec(rest);
  if (code) return { status, json: undefined, code: code[1], comment: c };
  if (status !== undefined) return { status, json: undefined, code: undefined, comment: c };
  return undefined;
}

/** The JSON value at the start of `s` (brackets counted outside strings). */
function balanced(s: string): string {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') {
      depth--;
      if (depth === 0) return s.slice(0, i + 1);
    }
  }
  throw new Error(`unbalanced JSON in a comment: ${s}`);
}

/** JSON as the docs write it: `{...}` for any value, `,...` before a closing brace for more keys. */
export function parseDocJson(text: string): unknown {
  const json = text
    .replace(/\{\s*\.\.\.\s*\}/g, JSON.stringify(ANY))
    .replace(/,\s*\.\.\.\s*\}/g, `,${JSON.stringify(MORE)}:true}`)
    .replace(/\[\s*\.\.\.\s*\]/g, '[]');
  return JSON.parse(json);
}

/**
 * Where `actual` differs in shape from what the docs show, or undefined: the same keys (more
 * only after `,...`) and the same value types; strings such as ids and times are compared as
 * strings, never by value (ids are opaque: `k3f9qa-1` matches any `<epoch>-<seq>`). Each element
 * of an actual array matches the documented element at its index, or the last one shown.
 */
export function shapeMismatch(expected: unknown, actual: unknown, path = '$'): string | undefined {
  if (expected === ANY) return undefined;
  const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  if (kind(expected) !== kind(actual)) return `${path}: the docs show ${kind(expected)}, the answer has ${kind(actual)}`;
  if (Array.isArray(expected)) {
    const a = actual as unknown[];
    if (expected.length === 0) return undefined;
    for (let i = 0; i < a.length; i++) {
      const why = shapeMismatch(expected[Math.min(i, expected.length - 1)], a[i], `${path}[${i}]`);
      if (why) return why;
    }
    return undefined;
  }
  if (kind(expected) === 'object') {
    const e = expected as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    for (const key of Object.keys(e)) {
      if (key === MORE) continue;
      if (!(key in a)) return `${path}.${key}: in the docs, not in the answer`;
      const why = shapeMismatch(e[key], a[key], `${path}.${key}`);
      if (why) return why;
    }
    if (!(MORE in e)) {
      const extra = Object.keys(a).filter((k) => !(k in e));
      if (extra.length > 0) return `${path}: the answer has keys the docs do not show: ${extra.join(', ')}`;
    }
  }
  return undefined;
}
