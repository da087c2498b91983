import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ERRORS } from '../../src/core/errors.js';
import { packageRoot } from '../../src/http/routes/pages.js';

test('docs/errors.md lists every registry code with its HTTP status, and nothing else', () => {
  const doc = readFileSync(join(packageRoot(), 'docs/errors.md'), 'utf8');
  const rows = new Map<string, number>();
  for (const m of doc.matchAll(/^\| `([A-Z0-9_]+)` \| (\d{3}) \|/gm)) rows.set(m[1]!, Number(m[2]));
  for (const [code, { status }] of Object.entries(ERRORS)) {
    assert.equal(rows.get(code), status, `docs/errors.md: ${code} should be listed with status ${status}`);
  }
  for (const code of rows.keys()) assert.ok(code in ERRORS, `docs/errors.md lists ${code}, which the registry lacks`);
});
