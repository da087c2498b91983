import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SqliteEventStore } from '../../src/stores/sqlite-event-store.js';
import { WalSync } from '../../src/stores/wal-sync.js';
import { toEventInput } from '../../src/core/event.js';

function dbFile(): string {
  return join(mkdtempSync(join(tmpdir(), 'herald-durable-')), 'events.db');
}

const input = (channel: string, data: string) => toEventInput({ channel, data });

test('synchronous full: an appended event is shown to nobody until its fsync has finished', async (t) => {
  const store = new SqliteEventStore({ file: dbFile() });
  t.after(() => store.close());
  const first = await store.append([input('orders', 'one')]);
  const appended = store.append([input('orders', 'two')]);
  // Committed, but the fsync runs on the thread pool and cannot have finished in this tick.
  assert.deepEqual((await store.read(['orders'], 0, 10)).map((e) => JSON.parse(e.data)), ['one']);
  assert.equal((await store.head()).lastSeq, first[0]!.event.seq);
  const [two] = await appended;
  assert.deepEqual((await store.read(['orders'], 0, 10)).map((e) => JSON.parse(e.data)), ['one', 'two']);
  assert.equal((await store.head()).lastSeq, two!.event.seq);
});

test('synchronous normal: an appended event is readable at once', async (t) => {
  const store = new SqliteEventStore({ file: dbFile(), synchronous: 'normal' });
  t.after(() => store.close());
  const appended = store.append([input('orders', 'one')]);
  assert.deepEqual((await store.read(['orders'], 0, 10)).map((e) => JSON.parse(e.data)), ['one']);
  await appended;
});

test('WAL syncs: calls made while one runs share the next one; after close every call fails', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'herald-wal-')), 'x-wal');
  writeFileSync(file, 'frames');
  const wal = new WalSync(file);
  const running = wal.sync();
  const queued = wal.sync();
  // The running sync may have started before the second caller's commit: it waits for another.
  assert.notEqual(queued, running);
  assert.equal(wal.sync(), queued);
  await Promise.all([running, queued]);
  // Nothing runs now: the next call starts a sync of its own.
  const alone = wal.sync();
  assert.notEqual(alone, queued);
  await alone;
  await wal.close();
  await assert.rejects(wal.sync(), /closed/);
});
