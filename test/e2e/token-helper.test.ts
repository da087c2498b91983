import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { decodeJwt, jwtVerify } from 'jose';
import { packageRoot } from '../../src/http/routes/pages.js';
import { startInProcess } from '../helpers/herald.js';
import { TEST_SECRET } from '../helpers/tokens.js';

const run = promisify(execFile);
const cli = join(packageRoot(), 'dist/src/cli/main.js');

test('herald token mints a token from the configured secret that Herald accepts for exactly its channels', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-token-'));
  const config = { store: { type: 'memory' }, auth: { jwt: { secret: TEST_SECRET, audience: 'herald', issuer: 'dev' } } };
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config));
  const { stdout } = await run(process.execPath, [cli, 'token', '--sub', 'u1', '--subscribe', 'user.u1.*', '--publish', 'chat.room-1', '--ttl', '600', '--config', file]);
  const token = stdout.trim();
  const { payload } = await jwtVerify(token, new TextEncoder().encode(TEST_SECRET), { audience: 'herald', issuer: 'dev' });
  assert.equal(payload.sub, 'u1');
  assert.deepEqual(payload.herald, { subscribe: ['user.u1.*'], publish: ['chat.room-1'] });
  assert.ok(payload.exp! - payload.iat! === 600);

  const h = await startInProcess(config);
  try {
    const ac = new AbortController();
    const ok = await fetch(`${h.url}/v1/stream?channel=user.u1.inbox&token=${token}`, { signal: ac.signal });
    assert.equal(ok.status, 200);
    ac.abort();
    assert.equal((await fetch(`${h.url}/v1/stream?channel=user.u2.inbox&token=${token}`)).status, 403);
  } finally {
    await h.close();
  }
});

test('herald token takes HERALD_JWT_SECRET, and explains what is missing', async () => {
  const { stdout } = await run(process.execPath, [cli, 'token', '--sub', 'u9'], { env: { ...process.env, HERALD_CONFIG: '', HERALD_JWT_SECRET: TEST_SECRET } });
  assert.equal(decodeJwt(stdout.trim()).sub, 'u9');
  await assert.rejects(run(process.execPath, [cli, 'token', '--sub', 'u9'], { env: { ...process.env, HERALD_CONFIG: '', HERALD_JWT_SECRET: '' } }), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 2);
    assert.match(err.stderr, /no HMAC secret/);
    return true;
  });
  await assert.rejects(run(process.execPath, [cli, 'token', '--subscribe', 'x'], { env: { ...process.env, HERALD_JWT_SECRET: TEST_SECRET } }), /--sub is required/);
});
