import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildConfig } from '../../src/config/load.js';
import { packageRoot } from '../../src/http/routes/pages.js';

const env = { HERALD_DATA_DIR: '/srv/herald' };

test('cluster.workers is 1 by default, an integer of at least 1 or "auto"; HERALD_WORKERS wins over the file', () => {
  assert.deepEqual(buildConfig({}, env).cluster, { workers: 1 });
  assert.deepEqual(buildConfig({ cluster: { workers: 4 } }, env).cluster, { workers: 4 });
  assert.deepEqual(buildConfig({ cluster: { workers: 'auto' } }, env).cluster, { workers: 'auto' });
  assert.deepEqual(buildConfig({ cluster: { workers: 4 } }, { ...env, HERALD_WORKERS: '2' }).cluster, { workers: 2 });
  assert.deepEqual(buildConfig({}, { ...env, HERALD_WORKERS: 'auto' }).cluster, { workers: 'auto' });
  for (const bad of [0, -1, 1.5, 'many', '2', null]) {
    assert.throws(() => buildConfig({ cluster: { workers: bad } }, env), /config key "cluster\.workers"/);
  }
  assert.throws(() => buildConfig({ cluster: { worker: 2 } }, env), /"cluster\.worker": unknown key/);
  for (const bad of ['0', '-2', '1.5', 'two', '1e3']) {
    assert.throws(() => buildConfig({}, { ...env, HERALD_WORKERS: bad }), /HERALD_WORKERS must be an integer from 1 to \d+, or "auto"/);
  }
});

test('a memory log refuses more than one worker: each process would keep a log of its own', () => {
  assert.throws(() => buildConfig({ backend: { type: 'memory' }, cluster: { workers: 2 } }, env), /memory log lives in one process/);
  assert.throws(() => buildConfig({ backend: { type: 'sqlite', file: ':memory:' } }, { ...env, HERALD_WORKERS: 'auto' }), /memory log/);
  assert.deepEqual(buildConfig({ backend: { type: 'memory' }, cluster: { workers: 1 } }, env).cluster, { workers: 1 });
});

test('herald --workers with a bad value stops at start with one line naming the flag (exit 2)', () => {
  const main = join(packageRoot(), 'dist/src/cli/main.js');
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-workers-'));
  for (const args of [['--workers', '0'], ['--workers=x'], ['--workers']]) {
    const r = spawnSync(process.execPath, [main, ...args], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', HERALD_DATA_DIR: dataDir },
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^herald: --workers (must be an integer from 1 to \d+, or "auto"|needs a number or "auto")/);
  }
});

test('a worker that cannot start stops herald --workers with its reason, instead of being restarted', () => {
  const main = join(packageRoot(), 'dist/src/cli/main.js');
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-workers-'));
  const config = join(dataDir, 'config.json');
  // The database's folder is a file: no worker can open it.
  writeFileSync(config, JSON.stringify({ backend: { type: 'sqlite', file: join(config, 'herald.db') } }));
  const r = spawnSync(process.execPath, [main, '--config', config, '--workers', '2'], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', HERALD_DATA_DIR: dataDir },
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /herald: failed to start: .*herald\.db/);
  assert.match(r.stdout, /a worker failed to start; stopping Herald/);
  assert.doesNotMatch(r.stdout, /starting a replacement/);
});
