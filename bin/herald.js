#!/usr/bin/env node
// The `herald` command (`npx herald ...`). In a clone it compiles dist/ first when the sources
// are newer (scripts/build-if-stale.mjs), so the first run after `npm ci` works without a
// separate build; an installed package has dist/ only and starts at once.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const builder = join(root, 'scripts', 'build-if-stale.mjs');
if (existsSync(builder)) {
  const { buildIfStale } = await import(pathToFileURL(builder).href);
  const code = buildIfStale();
  if (code !== 0) {
    process.stderr.write('herald: the build failed; fix the errors above, or run `npm ci && npm run build`\n');
    process.exit(code);
  }
}
const main = join(root, 'dist', 'src', 'cli', 'main.js');
if (!existsSync(main)) {
  process.stderr.write(`herald: ${main} is missing: run \`npm ci && npm run build\` in ${root}\n`);
  process.exit(1);
}
await import(pathToFileURL(main).href);
