import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { SqliteDeliveryStore } from '../../src/stores/sqlite-delivery-store.js';
import { connect } from './delivery-store.contract.js';

/** Claims from another thread, on a connection of its own: real concurrency on one file. */
const CLAIMER = `
  const { parentPort, workerData } = require('node:worker_threads');
  import(workerData.store).then(async ({ SqliteDeliveryStore }) => {
    const Database = require(workerData.sqlite);
    const db = new Database(workerData.file);
    db.pragma('busy_timeout = 5000');
    const s = new SqliteDeliveryStore(db);
    // A barrier: every thread starts claiming at the same moment.
    await new Promise((go) => { parentPort.once('message', go); parentPort.postMessage('ready'); });
    const ids = [];
    for (;;) {
      const r = await s.claim([{ endpointId: 'e', limit: 3, ordered: false }], 0, 60000, workerData.name);
      if (r.claimed.length === 0) break;
      for (const d of r.claimed) ids.push(d.id);
      // Pause between claims, so no thread can drain the queue before the others start and
      // the claims of all three keep interleaving.
      await new Promise((next) => setTimeout(next, 1));
    }
    db.close();
    parentPort.postMessage(ids);
  });
`;

test('workers on separate threads and connections never claim the same delivery', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'herald-claims-')), 'herald.db');
  const store = new SqliteDeliveryStore(connect(file));
  const total = 3_000;
  await store.enqueue(
    Array.from({ length: total }, (_, i) => ({
      endpointId: 'e', eventSeq: i + 1, msgId: `m${i}`, body: '{}', status: 'pending' as const, nextAt: 0, createdAt: 0,
    })),
  );
  const storeUrl = new URL('../../src/stores/sqlite-delivery-store.js', import.meta.url).href;
  const sqlite = (await import('node:module')).createRequire(import.meta.url).resolve('better-sqlite3');
  const workers = ['a', 'b', 'c'].map((name) => new Worker(CLAIMER, { eval: true, workerData: { file, name, store: storeUrl, sqlite } }));
  await Promise.all(workers.map((w) => new Promise((ready) => w.once('message', ready))));
  const results = await Promise.all(
    workers.map(
      (w) =>
        new Promise<number[]>((resolve, reject) => {
          w.once('message', resolve);
          w.once('error', reject);
          w.postMessage('go');
        }),
    ),
  );
  const seen = new Map<number, number>();
  results.forEach((ids, worker) => ids.forEach((id) => {
    assert.equal(seen.get(id), undefined, `delivery ${id} claimed by workers ${seen.get(id)} and ${worker}`);
    seen.set(id, worker);
  }));
  assert.equal(seen.size, total, 'every delivery claimed exactly once');
  assert.ok(results.every((ids) => ids.length > 0), 'every worker took part');
  await store.close();
});
