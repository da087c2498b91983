#!/usr/bin/env node
// Builds @herald/client: the ESM modules and their types (tsc, into dist/), then the browser
// bundle (esbuild, minified, dist/herald-client.min.js), whose min+gzip size is printed and held
// to BUNDLE_MAX_GZIP_BYTES: the build fails past it.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const PKG = join(dirname(fileURLToPath(import.meta.url)), '..');
/** bytes: the size promised for the browser bundle, minified and gzipped. */
export const BUNDLE_MAX_GZIP_BYTES = 10_240;
const BUNDLE = join(PKG, 'dist', 'herald-client.min.js');

const require = createRequire(join(PKG, 'package.json'));
const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(PKG, 'tsconfig.json')], { stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

const { build } = await import(require.resolve('esbuild'));
await build({
  entryPoints: [join(PKG, 'dist', 'index.js')],
  outfile: BUNDLE,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
const min = readFileSync(BUNDLE);
const gz = gzipSync(min, { level: 9 }).length;
console.log(`@herald/client: browser bundle ${min.length} bytes minified, ${gz} bytes min+gzip (limit ${BUNDLE_MAX_GZIP_BYTES})`);
if (gz > BUNDLE_MAX_GZIP_BYTES) {
  console.error(`@herald/client: the browser bundle is over its size limit by ${gz - BUNDLE_MAX_GZIP_BYTES} bytes`);
  process.exit(1);
}
