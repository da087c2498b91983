import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { packageRoot } from '../../src/http/routes/pages.js';
import { startInProcess } from '../helpers/herald.js';

/** Every operation docs/openapi.yaml documents is a route Herald really serves. */
test('docs/openapi.yaml documents only routes that exist', async (t) => {
  const h = await startInProcess();
  t.after(() => h.close());
  const doc = readFileSync(join(packageRoot(), 'docs/openapi.yaml'), 'utf8');
  let path: string | undefined;
  let operations = 0;
  for (const line of doc.split('\n')) {
    const p = /^ {2}(\/\S*):$/.exec(line);
    if (p) {
      path = p[1]!.replace(/\{(\w+)\}/g, ':$1');
      continue;
    }
    const m = /^ {4}(get|post|put|patch|delete):/.exec(line);
    if (m && path) {
      operations++;
      const method = m[1]!.toUpperCase() as 'GET';
      assert.ok(h.herald.app.hasRoute({ method, url: path }), `${method} ${path} is documented but not served`);
    }
  }
  assert.ok(operations >= 25, `expected the whole API to be documented, found ${operations} operations`);
});
