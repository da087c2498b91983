import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../src/http/routes/pages.js';

/**
 * docs/architecture.md is the map a newcomer follows through the code. A map that names a file
 * which was moved or renamed sends them nowhere, so every repository path it names in backticks
 * must exist, and every relative link must lead to a file.
 */
const doc = readFileSync(join(packageRoot(), 'docs', 'architecture.md'), 'utf8');

/** Backticked words that look like repository paths: a known top folder, then a path. */
function namedPaths(text: string): string[] {
  const paths = new Set<string>();
  for (const m of text.matchAll(/`([^`\s]+)`/g)) {
    const p = m[1]!;
    if (/^(src|test|docs|bench|scripts|web)\//.test(p)) paths.add(p.replace(/\/$/, ''));
  }
  return [...paths];
}

test('the scan finds the paths the map names', () => {
  const named = namedPaths(doc);
  assert.ok(named.length >= 40, `only ${named.length} paths found: the scan is broken`);
  assert.ok(named.includes('src/core/hub.ts') && named.includes('src/stores/backend.ts'));
});

test('every path docs/architecture.md names exists', () => {
  const missing = namedPaths(doc).filter((p) => !existsSync(join(packageRoot(), p)));
  assert.deepEqual(missing, [], 'named in docs/architecture.md but not in the repository');
});

test('every relative link of docs/architecture.md leads to a file', () => {
  const links = [...doc.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));
  assert.ok(links.length > 0, 'no link found: the scan is broken');
  const broken = links.filter((l) => !existsSync(join(packageRoot(), 'docs', l)));
  assert.deepEqual(broken, []);
});
