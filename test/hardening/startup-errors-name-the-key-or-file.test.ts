import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { spawnHerald } from '../helpers/herald.js';
import { pem, rsaKeys } from '../helpers/tokens.js';

/** Starts the CLI as a user does and returns how it failed: exit code and stderr. */
async function failedStart(file: Record<string, unknown>, dataDir?: string): Promise<{ code: number; stderr: string }> {
  try {
    const h = await spawnHerald(file, dataDir ? { dataDir } : {});
    await h.kill();
  } catch (err) {
    const m = /^herald exited with (\d+): ([\s\S]*)$/.exec((err as Error).message);
    assert.ok(m, (err as Error).message);
    return { code: Number(m[1]), stderr: m[2]! };
  }
  assert.fail('herald started');
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line, not a stack trace:\n${stderr}`);
  return lines[0]!;
}

test('a broken PEM in auth.jwt.publicKey stops start-up naming the key and the cause', async () => {
  const good = pem(rsaKeys().publicKey);
  const broken = good.replace(/\n([A-Za-z0-9+/]{20})/, '\n!!!!$1');
  const { code, stderr } = await failedStart({ auth: { jwt: { publicKey: broken } } });
  assert.equal(code, 2);
  assert.match(oneLine(stderr), /^herald: config key "auth\.jwt\.publicKey": is not a usable PEM public key: .+/);
});

test('a corrupt database file stops start-up naming the file and the cause', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-corrupt-'));
  const file = join(dir, 'herald.db');
  writeFileSync(file, 'SQLite format 2 -- not a database at all '.repeat(200));
  const { code, stderr } = await failedStart({ backend: { type: 'sqlite', file } }, dir);
  assert.equal(code, 1);
  const line = oneLine(stderr);
  assert.ok(line.includes(file), line);
  assert.match(line, /backend\.file/);
  assert.match(line, /not a database/);
});

test('a database on a read-only file system stops start-up naming the file and the cause', async (t) => {
  const rw = mkdtempSync(join(tmpdir(), 'herald-rw-'));
  const ro = join(rw, 'ro');
  mkdirSync(join(rw, 'data'));
  mkdirSync(ro);
  // A database made by Herald, then the same folder mounted read-only (root only: `chmod` does
  // not stop root, a read-only mount does).
  const first = await spawnHerald({}, { dataDir: join(rw, 'data') });
  assert.equal(await first.stop(), 0);
  try {
    execFileSync('mount', ['--bind', '-o', 'ro', join(rw, 'data'), ro], { stdio: 'ignore' });
  } catch {
    t.skip('needs root to mount a read-only folder');
    return;
  }
  try {
    const file = join(ro, 'herald.db');
    const { code, stderr } = await failedStart({ backend: { type: 'sqlite', file } }, mkdtempSync(join(tmpdir(), 'herald-cfg-')));
    assert.equal(code, 1);
    const line = oneLine(stderr);
    assert.ok(line.includes(file), line);
    assert.match(line, /EROFS|readonly|read-only/i);
  } finally {
    execFileSync('umount', [ro]);
  }
});
