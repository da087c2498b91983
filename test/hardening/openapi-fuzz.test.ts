import { test } from 'node:test';
import { fuzz } from '../helpers/openapi-fuzz.js';

// docs/openapi.yaml under schemathesis (test/helpers/openapi-fuzz.ts), with no auth configured.
// Each mode is a file of its own: a run takes up to a minute and a half on a busy machine.

test('dev mode: every fuzzed request gets a documented answer that matches docs/openapi.yaml, never a 5xx', async (t) => {
  await fuzz(t, {}, []);
});
