import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SqliteEventStore } from '../../src/stores/sqlite-event-store.js';
import { waitFor } from '../helpers/herald.js';

const file = () => join(mkdtempSync(join(tmpdir(), 'herald-ckpt-')), 'events.db');

async function appendMegabytes(store: SqliteEventStore, mb: number): Promise<void> {
  const data = JSON.stringify('x'.repeat(1_000));
  for (let i = 0; i < mb; i++) {
    await store.append(Array.from({ length: 1_000 }, () => ({ channel: 'bulk', type: 'message', data })));
  }
}

test('commits reach the database file through the background thread, not through the committing connection', async () => {
  const path = file();
  const store = new SqliteEventStore({ file: path });
  assert.equal(store.database.pragma('wal_autocheckpoint', { simple: true }), 0, 'the committing connection never checkpoints');
  await appendMegabytes(store, 6);
  // Without a checkpoint every page stays in the WAL and the database file keeps its schema size.
  await waitFor(() => statSync(path).size > 5 * 1_048_576, 10_000, 'the database file to receive the checkpointed pages');
  assert.equal((await store.read(['bulk'], 0, 10_000)).length, 6_000);
  await store.close();
  assert.equal(existsSync(`${path}-wal`), false, 'closing stops the thread first, so the last connection removes the WAL');
});

test('without background checkpoints the committing connection checkpoints as SQLite does by default', async () => {
  const path = file();
  const store = new SqliteEventStore({ file: path, backgroundCheckpoints: false });
  assert.equal(store.database.pragma('wal_autocheckpoint', { simple: true }), 1_000);
  await appendMegabytes(store, 6);
  assert.ok(statSync(path).size > 4 * 1_048_576, 'the commits themselves copied pages into the database file');
  await store.close();
});
