import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startInProcess } from '../helpers/herald.js';

/**
 * Errors raised by the router itself, before any route runs, answer in the registry's shape
 * (`{ "error": { "code", "message" } }`) like every other error: schemathesis found fastify's own
 * body (`{"error":"Bad Request","code":"FST_ERR_MAX_PARAM_LENGTH",...}`) on a long endpoint id.
 */
test('an over-long path parameter is a 414 URI_TOO_LONG in the registry shape', async (t) => {
  const h = await startInProcess();
  t.after(() => h.close());
  const res = await fetch(`${h.url}/v1/endpoints/${'x'.repeat(101)}`);
  assert.equal(res.status, 414);
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'URI_TOO_LONG');
  assert.equal(typeof body.error.message, 'string');
});

test('a path that is not valid percent-encoded UTF-8 is a 400 BAD_REQUEST in the registry shape', async (t) => {
  const h = await startInProcess();
  t.after(() => h.close());
  const res = await fetch(`${h.url}/v1/endpoints/%E0%A4%A`);
  assert.equal(res.status, 400);
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'BAD_REQUEST');
});
