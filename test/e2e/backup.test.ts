import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { packageRoot } from '../../src/http/routes/pages.js';
import { postJson, spawnHerald, type SpawnedHerald } from '../helpers/herald.js';

/** ms the backup command may take before the test fails (a loaded CI machine, a small log). */
const BACKUP_TIMEOUT_MS = 60_000;

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(packageRoot(), 'dist/src/cli/main.js'), ...args], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), BACKUP_TIMEOUT_MS);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

const running: SpawnedHerald[] = [];
after(async () => {
  for (const h of running) await h.stop();
});

test('herald backup copies a running Herald’s log under publishes; a Herald restored from the copy serves every event acknowledged before it', async () => {
  const live = await spawnHerald();
  running.push(live);
  const acked: string[] = [];
  let stop = false;
  let backupStartedAt = -1; // acked.length when the backup command was started
  // One publisher, back to back, for the whole backup: SQLite's online backup has to copy a
  // log that another process keeps writing to.
  const publisher = (async () => {
    for (let i = 0; !stop && i < 900; i++) {
      const r = await postJson(`${live.url}/v1/publish`, { channel: 'backup', data: { i } });
      assert.equal(r.status, 201, r.text);
      acked.push(r.json.id as string);
    }
  })();
  while (acked.length < 100) await new Promise((r) => setImmediate(r));

  const file = join(mkdtempSync(join(tmpdir(), 'herald-backup-')), 'herald-copy.db');
  backupStartedAt = acked.length;
  const result = await runCli(['backup', file], { HERALD_DATA_DIR: live.dataDir });
  stop = true;
  await publisher;
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^backed up .*herald\.db to .*herald-copy\.db \(\d+ pages\)\n$/);
  assert.ok(acked.length > backupStartedAt, 'publishes went on while the backup ran');
  assert.deepEqual(readdirSync(join(file, '..')), ['herald-copy.db'], 'no partial file is left beside the copy');

  // Restore as docs/deploy.md says: the copy becomes the data folder's database file.
  const restoredDir = mkdtempSync(join(tmpdir(), 'herald-restored-'));
  copyFileSync(file, join(restoredDir, 'herald.db'));
  const restored = await spawnHerald({}, { dataDir: restoredDir });
  running.push(restored);
  const res = await fetch(`${restored.url}/v1/events?channel=backup&limit=1000`);
  assert.equal(res.status, 200);
  const ids = new Set(((await res.json()) as { events: { id: string }[] }).events.map((e) => e.id));
  const missing = acked.slice(0, backupStartedAt).filter((id) => !ids.has(id));
  assert.deepEqual(missing, [], 'every event acknowledged before the backup started is in the copy');
  for (const id of ids) assert.ok(acked.includes(id), `${id} in the copy was acknowledged`);
});

test('herald backup refuses to overwrite a file, and names what to do without a SQLite backend', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'herald-backup-refuse-'));
  const h = await spawnHerald({}, { dataDir });
  await h.stop();
  const existing = join(dataDir, 'herald.db');
  assert.ok(existsSync(existing));
  const overwrite = await runCli(['backup', existing], { HERALD_DATA_DIR: dataDir });
  assert.equal(overwrite.code, 2);
  assert.match(overwrite.stderr, /exists already; name a new file/);
  const memory = await runCli(['backup', join(dataDir, 'x.db')], { HERALD_DATA_DIR: dataDir, HERALD_BACKEND: 'memory' });
  assert.equal(memory.code, 2);
  assert.match(memory.stderr, /backend\.type is "memory"/);
});
