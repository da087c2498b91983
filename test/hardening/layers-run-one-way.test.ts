import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../src/http/routes/pages.js';

/**
 * The layers of src/, lowest first (docs/architecture.md). A folder may import its own layer's
 * folders and the layers below, never one above, and no two folders may import each other, even
 * round a longer cycle: a layer that runs back up is what made every part depend on every other.
 * A new top-level folder must be given a place here before it can be imported.
 */
const LAYERS: Readonly<Record<string, number>> = {
  // Pure model, interfaces as specifications, the error registry, protocol limits. No I/O.
  core: 0,
  // Settings (validated once, frozen) and logs/metrics: everything above may use them.
  config: 1,
  observability: 1,
  // State behind the core's interfaces: the log, brokers, presence.
  stores: 2,
  brokers: 2,
  presence: 2,
  // Ways events come in and go out.
  transports: 3,
  sources: 3,
  // The HTTP edge: routes, and beside them credentials, permissions and per-client limits.
  http: 4,
  auth: 4,
  limits: 4,
  // Wiring, then the command line (the only place that reads the environment or exits).
  'app.ts': 5,
  cli: 6,
};

interface Edge {
  readonly from: string;
  readonly to: string;
  readonly at: string;
}

const IMPORT = /(?:import|export)[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sourceFiles(p, out);
    // Unit tests beside the code may reach across layers to build their fixtures.
    else if (/\.(ts|mts)$/.test(name) && !/\.test\.ts$|\.d\.ts$/.test(name)) out.push(p);
  }
  return out;
}

/** Every import between two different top-level parts of src/ (a folder, or a file at its root). */
function folderImports(): { parts: Set<string>; edges: Edge[] } {
  const src = join(packageRoot(), 'src');
  const partOf = (p: string) => relative(src, p).split(sep)[0]!;
  const parts = new Set<string>();
  const edges: Edge[] = [];
  for (const file of sourceFiles(src)) {
    const from = partOf(file);
    parts.add(from);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const target = resolve(dirname(file), (m[1] ?? m[2] ?? m[3])!);
      if (!target.startsWith(src + sep)) continue;
      const to = partOf(target).replace(/\.js$/, '.ts'); // `./app.js` is src/app.ts
      if (to === from) continue;
      const line = text.slice(0, m.index).split('\n').length;
      edges.push({ from, to, at: `${relative(packageRoot(), file)}:${line}` });
    }
  }
  return { parts, edges };
}

const { parts, edges } = folderImports();

test('the scan finds the imports it judges (into core/, out of cli/)', () => {
  assert.ok(edges.some((e) => e.to === 'core'), 'no import of core/ was found: the scan is broken');
  assert.ok(edges.some((e) => e.from === 'cli'), 'cli/ imports nothing: the scan is broken');
});

test('every top-level part of src/ has a place in the layers', () => {
  const unplaced = [...parts].filter((p) => !(p in LAYERS));
  assert.deepEqual(unplaced, [], `give these a layer in LAYERS: ${unplaced.join(', ')}`);
});

test('no part imports a part of a higher layer', () => {
  const upward = edges
    .filter((e) => (LAYERS[e.to] ?? Infinity) > (LAYERS[e.from] ?? Infinity))
    .map((e) => `${e.at}: ${e.from} (layer ${LAYERS[e.from]}) imports ${e.to} (layer ${LAYERS[e.to]})`);
  assert.deepEqual(upward, []);
});

test('no two parts import each other, directly or round a cycle', () => {
  const next = new Map<string, Set<string>>();
  for (const e of edges) {
    if (!next.has(e.from)) next.set(e.from, new Set());
    next.get(e.from)!.add(e.to);
  }
  // Depth-first search; a grey node met again closes a cycle.
  const state = new Map<string, 'grey' | 'black'>();
  const cycles: string[] = [];
  const path: string[] = [];
  const visit = (n: string) => {
    state.set(n, 'grey');
    path.push(n);
    for (const m of next.get(n) ?? []) {
      if (state.get(m) === 'grey') {
        const loop = [...path.slice(path.indexOf(m)), m];
        const where = loop.slice(0, -1).map((a, i) => edges.find((e) => e.from === a && e.to === loop[i + 1])!.at);
        cycles.push(`${loop.join(' -> ')} (${where.join(', ')})`);
      } else if (!state.has(m)) visit(m);
    }
    path.pop();
    state.set(n, 'black');
  };
  for (const p of [...parts].sort()) if (!state.has(p)) visit(p);
  assert.deepEqual(cycles, []);
});

test('adapters reach storage only through interfaces: no transport, source or HTTP part imports a store or broker', () => {
  // Only the wiring (app.ts) and the command line choose implementations (src/stores/backend.ts);
  // everything above the stores sees the interfaces of core/ and of its own folder.
  const adapters = new Set(['transports', 'sources', 'http', 'auth', 'limits', 'presence']);
  const reach = edges
    .filter((e) => adapters.has(e.from) && (e.to === 'stores' || e.to === 'brokers'))
    .map((e) => `${e.at}: ${e.from} imports ${e.to}`);
  assert.deepEqual(reach, []);
});
