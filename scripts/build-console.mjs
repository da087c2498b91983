#!/usr/bin/env node
// Builds the admin console (web/console/) into dist/console/, which Herald serves at /console:
// type-checks its TypeScript (web/console/tsconfig.json: DOM types, no emit), bundles
// src/main.ts with esbuild (the client SDK comes in from its sources), and copies the page and
// its stylesheet. `npm run build` runs it (scripts/build-if-stale.mjs).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'web', 'console');
const OUT = join(ROOT, 'dist', 'console');

const require = createRequire(join(ROOT, 'package.json'));
const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(SRC, 'tsconfig.json')], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

// esbuild is the client SDK's build dependency (packages/client), resolved from there.
const { build } = await import(createRequire(join(ROOT, 'packages', 'client', 'package.json')).resolve('esbuild'));
mkdirSync(OUT, { recursive: true });
await build({
  entryPoints: [join(SRC, 'src', 'main.ts')],
  outfile: join(OUT, 'console.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
});
for (const f of ['index.html', 'console.css']) copyFileSync(join(SRC, f), join(OUT, f));
console.log('console: built dist/console/ (served at /console)');
