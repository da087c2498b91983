import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { STORE_WRITE_PROBE_INTERVAL_MS } from '../../src/observability/store-health.js';
import { postJson, spawnHerald, waitFor } from '../helpers/herald.js';

/** bytes of the small file system the database lives on. */
const DISK_BYTES = 8 * 1024 * 1024;
/** bytes left free once the filler is written: a few publishes fill it. */
const LEFT_FREE_BYTES = 256 * 1024;

test('a full disk: publishes 503, /readyz 503 with one error line, both recover once space is freed', async (t) => {
  const mnt = mkdtempSync(join(tmpdir(), 'herald-full-'));
  try {
    // A real full disk: a small tmpfs (root only), then a filler file leaving little space.
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK_BYTES}`, 'tmpfs', mnt], { stdio: 'ignore' });
  } catch {
    t.skip('needs root to mount a small file system');
    return;
  }
  let h: Awaited<ReturnType<typeof spawnHerald>> | undefined;
  try {
    h = await spawnHerald({ retention: { pruneIntervalSeconds: 3_600 } }, { dataDir: mnt });
    assert.equal((await fetch(`${h.url}/readyz`)).status, 200);
    const fs = statfsSync(mnt);
    const filler = join(mnt, 'filler');
    writeFileSync(filler, Buffer.alloc(Math.max(0, fs.bavail * fs.bsize - LEFT_FREE_BYTES)));
    const big = 'x'.repeat(60_000);
    let failed: Awaited<ReturnType<typeof postJson>> | undefined;
    let failures = 0;
    // a burst: failed publishes with no success between them (a checkpoint can free room in the WAL)
    let bursts = 0;
    let lastOk = true;
    for (let i = 0; i < 200 && failures < 5; i++) {
      const r = await postJson(`${h.url}/v1/publish`, { channel: 'disk', data: big });
      if (r.status !== 201) {
        failed = r;
        failures++;
        if (lastOk) bursts++;
      }
      lastOk = r.status === 201;
    }
    assert.ok(failed, 'the disk never filled');
    // Asked right after the failures (well within STORE_WRITE_PROBE_INTERVAL_MS): no probe yet.
    assert.equal(failed.status, 503);
    assert.equal(failed.json.error.code, 'STORE_UNAVAILABLE');
    const ready = await fetch(`${h.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.deepEqual(await ready.json(), { status: 'store_not_writable' });
    const errors = () => h!.logs.filter((l) => l.level === 50 && String(l.msg).startsWith('store: an append failed'));
    await waitFor(() => errors().length >= bursts, 5_000, 'the error lines');
    assert.ok(failures > bursts, `${failures} failures in ${bursts} bursts`);
    assert.equal(errors().length, bursts, `${failures} failed publishes in ${bursts} bursts: one line a burst`);

    rmSync(filler);
    // /readyz probes a write of its own (a node out of rotation gets no publishes to tell it)
    // (at most every STORE_WRITE_PROBE_INTERVAL_MS, counted from the last failure)
    await waitFor(async () => (await fetch(`${h!.url}/readyz`)).status === 200, STORE_WRITE_PROBE_INTERVAL_MS + 15_000, '/readyz to recover');
    await waitFor(() => h!.logs.some((l) => l.msg === 'store: writes succeed again'), 5_000, 'the recovery line');
    assert.equal((await postJson(`${h.url}/v1/publish`, { channel: 'disk', data: 'after' })).status, 201);
  } finally {
    if (h && h.child.exitCode === null) await h.kill();
    execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
});
