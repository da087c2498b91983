import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildConfig } from '../../src/config/load.js';
import { spawnHerald, startInProcess, waitFor } from '../helpers/herald.js';

const env = { HERALD_DATA_DIR: '/srv/herald' };

test('one backend key chooses the stores; unknown keys and types are refused by name', () => {
  assert.deepEqual(buildConfig({}, env).backend, { type: 'sqlite', file: '/srv/herald/herald.db', synchronous: 'full' });
  assert.deepEqual(buildConfig({ backend: { type: 'memory' } }, env).backend, { type: 'memory' });
  assert.deepEqual(buildConfig({ backend: { type: 'sqlite', synchronous: 'normal' } }, env).backend, {
    type: 'sqlite',
    file: '/srv/herald/herald.db',
    synchronous: 'normal',
  });
  assert.deepEqual(buildConfig({}, env).deprecations, []);
  assert.throws(() => buildConfig({ backend: { type: 'memory', file: 'x.db' } }), /backend.*file.*unknown key/);
  assert.throws(() => buildConfig({ backend: { type: 'cassandra' } }), /"backend\.type"/);
  assert.throws(() => buildConfig({ backend: { type: 'memory' }, store: { type: 'memory' } }), /"store" and "backend"/);
});

test('the store keys still work, mapped onto backend with one warning naming old and new keys', () => {
  const c = buildConfig({ store: { type: 'sqlite', sqlite: { file: 'old.db', synchronous: 'normal' } } }, env);
  assert.deepEqual(c.backend, { type: 'sqlite', file: '/srv/herald/old.db', synchronous: 'normal' });
  assert.equal(c.deprecations.length, 1);
  assert.match(c.deprecations[0]!, /"store\.type", "store\.sqlite\.file", "store\.sqlite\.synchronous" are deprecated: use "backend\.type", "backend\.file", "backend\.synchronous"/);
  const m = buildConfig({ store: { type: 'memory' } }, env);
  assert.deepEqual(m.backend, { type: 'memory' });
  assert.match(m.deprecations[0]!, /"store\.type" is deprecated: use "backend\.type"/);
});

test('HERALD_BACKEND picks the type over the file, and only a known one', () => {
  assert.deepEqual(buildConfig({}, { ...env, HERALD_BACKEND: 'memory' }).backend, { type: 'memory' });
  const kept = buildConfig({ backend: { type: 'sqlite', file: 'a.db' } }, { ...env, HERALD_BACKEND: 'sqlite' });
  assert.deepEqual(kept.backend, { type: 'sqlite', file: '/srv/herald/a.db', synchronous: 'full' });
  assert.throws(() => buildConfig({}, { ...env, HERALD_BACKEND: 'cassandra' }), /HERALD_BACKEND must be "sqlite", "memory", "redis" or "postgres"/);
});

test('every store of a node comes from its backend: the log, receipts and deliveries share the epoch', async (t) => {
  const h = await startInProcess({ backend: { type: 'sqlite', file: 'one.db', synchronous: 'normal' } });
  t.after(() => h.close());
  const { backend } = h.herald;
  assert.equal(backend.type, 'sqlite');
  assert.ok(existsSync(join(h.dataDir, 'one.db')));
  assert.equal(await backend.deliveries.logId(), (await h.herald.hub.head()).epoch);
  assert.equal(backend.inbound, backend.log, 'receipts are written in the log\'s own transactions');
  assert.ok(!('store' in h.herald.hub), 'the hub lends its log to nobody');
  const m = await startInProcess({ backend: { type: 'memory' } });
  t.after(() => m.close());
  assert.equal(m.herald.backend.type, 'memory');
  assert.equal(await m.herald.backend.deliveries.logId(), (await m.herald.hub.head()).epoch);
});

test('a node started with the old store keys warns once at start and keeps its data where they say', async () => {
  const h = await spawnHerald({ store: { type: 'sqlite', sqlite: { file: 'legacy.db', synchronous: 'normal' } } });
  try {
    await waitFor(() => h.logs.some((l) => l.msg === 'herald listening'), 10_000, 'the start line');
    const warnings = h.logs.filter((l) => l.level === 40 && /deprecated/.test(String(l.msg)));
    assert.equal(warnings.length, 1);
    assert.match(String(warnings[0]!.msg), /"store\.type".*"backend\.type"/);
    assert.ok(existsSync(join(h.dataDir, 'legacy.db')));
  } finally {
    await h.stop();
  }
});

test('a redis backend takes its URL from the file or HERALD_REDIS_URL, and refuses to start without one', () => {
  const file = { backend: { type: 'redis', url: 'redis://127.0.0.1:6379' } };
  assert.deepEqual(buildConfig(file, env).backend, {
    type: 'redis',
    url: 'redis://127.0.0.1:6379',
    keyPrefix: 'herald',
    waitReplicas: 0,
    waitTimeoutSeconds: 1,
  });
  // The environment's URL wins, so one file serves every node of a deployment.
  assert.equal((buildConfig(file, { ...env, HERALD_REDIS_URL: 'redis://10.0.0.5:6379' }).backend as { url: string }).url, 'redis://10.0.0.5:6379');
  // HERALD_REDIS_URL alone chooses redis when the file chooses no backend ...
  assert.equal(buildConfig({}, { ...env, HERALD_REDIS_URL: 'redis://r:6379' }).backend.type, 'redis');
  // ... but never overrides a backend the file or HERALD_BACKEND chose.
  assert.equal(buildConfig({ backend: { type: 'sqlite' } }, { ...env, HERALD_REDIS_URL: 'redis://r:6379' }).backend.type, 'sqlite');
  assert.equal(buildConfig({}, { ...env, HERALD_BACKEND: 'memory', HERALD_REDIS_URL: 'redis://r:6379' }).backend.type, 'memory');
  assert.throws(() => buildConfig({ backend: { type: 'redis' } }, env), /"backend\.url": a redis backend needs its URL \(or set HERALD_REDIS_URL\)/);
  assert.throws(() => buildConfig({}, { ...env, HERALD_BACKEND: 'redis' }), /backend\.url/);
  assert.throws(() => buildConfig({ backend: { type: 'redis', url: 'redis://r', keyPrefix: 'a}b' } }, env), /backend\.keyPrefix/);
  assert.throws(() => buildConfig({ backend: { type: 'redis', url: 'redis://r', file: 'x.db' } }, env), /backend\.file": unknown key/);
});

test('a postgres backend takes its URL from the file or HERALD_DATABASE_URL, with a schema and migrate-at-start', () => {
  assert.deepEqual(buildConfig({ backend: { type: 'postgres', url: 'postgres://db/herald' } }, env).backend, {
    type: 'postgres',
    url: 'postgres://db/herald',
    schema: 'herald',
    migrate: true,
  });
  const fromEnv = buildConfig({}, { ...env, HERALD_DATABASE_URL: 'postgres://db2/x' }).backend;
  assert.deepEqual(fromEnv, { type: 'postgres', url: 'postgres://db2/x', schema: 'herald', migrate: true });
  // Both shared backends' URLs and no choice in the file: ambiguous, so the default stays.
  assert.equal(buildConfig({}, { ...env, HERALD_DATABASE_URL: 'postgres://d', HERALD_REDIS_URL: 'redis://r' }).backend.type, 'sqlite');
  assert.throws(() => buildConfig({ backend: { type: 'postgres' } }, env), /"backend\.url": a postgres backend needs its URL \(or set HERALD_DATABASE_URL\)/);
  assert.throws(() => buildConfig({ backend: { type: 'postgres', url: 'postgres://d', schema: 'Bad-Name' } }, env), /backend\.schema/);
});
