import { test } from 'node:test';
import { ADMIN_KEY, fuzz } from '../helpers/openapi-fuzz.js';

// docs/openapi.yaml under schemathesis (test/helpers/openapi-fuzz.ts), with API keys configured
// and an admin key sent with every request.

test('auth configured: every fuzzed request gets a documented answer that matches docs/openapi.yaml, never a 5xx', async (t) => {
  await fuzz(t, { auth: { apiKeys: [{ key: ADMIN_KEY, name: 'fuzz', scopes: ['admin'] }] } }, [
    `Authorization: Bearer ${ADMIN_KEY}`,
  ]);
});
