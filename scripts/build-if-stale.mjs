#!/usr/bin/env node
// Compiles the TypeScript into dist/ only when a source is newer than the last build, so that
// `npm start` with nothing changed starts at once instead of spending 10-20 s in tsc (and
// `tsc --incremental` still takes over 3 s to find out that nothing changed).
//
//   node scripts/build-if-stale.mjs            # build when stale (used by `npm start` and bin/herald.js)
//   node scripts/build-if-stale.mjs --always   # build now (`npm run build`)
//
// A build is stale when dist/.build-stamp is missing or older than any file or folder under
// src/, test/, bench/, the client SDK's sources (packages/client/), the admin console's
// (web/console/, bundled by scripts/build-console.mjs into dist/console/) or one of
// tsconfig.json, package.json, package-lock.json (a folder's mtime moves when a file is added,
// removed or renamed in it). The stamp gets the time the build started, so a file saved during a
// build makes the next start build again. The rest of web/ is served as it is.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const STAMP = join(ROOT, 'dist', '.build-stamp');
const INPUT_DIRS = ['src', 'test', 'bench', 'packages/client/src', 'packages/client/scripts', 'web/console'];
const INPUT_SCRIPTS = ['scripts/build-console.mjs'];
const INPUT_FILES = ['tsconfig.json', 'package.json', 'package-lock.json'];

function newestMtimeMs(path) {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 0; // a missing input is no reason to build
  }
  let newest = st.mtimeMs;
  if (st.isDirectory()) {
    for (const name of readdirSync(path)) newest = Math.max(newest, newestMtimeMs(join(path, name)));
  }
  return newest;
}

/** Why a build is needed, or undefined when dist/ is up to date. */
export function staleReason(root = ROOT) {
  const stamp = join(root, 'dist', '.build-stamp');
  if (!existsSync(stamp)) return 'dist/ was never built here';
  const built = statSync(stamp).mtimeMs;
  for (const input of [...INPUT_DIRS, ...INPUT_FILES, ...INPUT_SCRIPTS]) {
    if (newestMtimeMs(join(root, input)) > built) return `${input} changed since the last build`;
  }
  return undefined;
}

/** The TypeScript compiler of this package, or undefined when dev dependencies are not installed. */
function tscPath() {
  try {
    return createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    return undefined;
  }
}

/** Runs tsc; writes the stamp only when it succeeded. Returns the exit code. */
export function build() {
  const tsc = tscPath();
  if (!tsc) {
    process.stderr.write('herald: TypeScript is not installed, so dist/ cannot be built: run `npm ci` first\n');
    return 1;
  }
  const started = new Date();
  const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.json')], { stdio: 'inherit' });
  if (r.status !== 0) return r.status ?? 1;
  // The client SDK (packages/client): its own modules, types and browser bundle, size checked.
  const sdk = spawnSync(process.execPath, [join(ROOT, 'packages', 'client', 'scripts', 'build.mjs')], { stdio: 'inherit' });
  if (sdk.status !== 0) return sdk.status ?? 1;
  // The admin console (web/console/ into dist/console/, served at /console).
  const adminConsole = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-console.mjs')], { stdio: 'inherit' });
  if (adminConsole.status !== 0) return adminConsole.status ?? 1;
  writeFileSync(STAMP, `built ${started.toISOString()}\n`);
  utimesSync(STAMP, started, started);
  return 0;
}

/** Builds when stale; returns the exit code (0 when nothing had to be done). */
export function buildIfStale({ quiet = false } = {}) {
  // An installed package ships dist/ without src/: there is nothing to compile.
  if (!existsSync(join(ROOT, 'src'))) return 0;
  const reason = staleReason();
  if (!reason) return 0;
  if (!quiet) process.stderr.write(`herald: building dist/ (${reason})\n`);
  return build();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exit(process.argv.includes('--always') ? build() : buildIfStale());
}
