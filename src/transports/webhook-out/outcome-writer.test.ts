import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { deliveryRecord, recordingLog } from '../../../test/helpers/outbound-doubles.js';
import type { DeliveryStore, FinishedAttempt } from '../../core/delivery-store.js';
import { FLUSH_BATCH, FLUSH_DELAY_MS, OutcomeWriter, type Done } from './outcome-writer.js';

/** The two store calls the writer makes, recorded; `fail` makes them reject. */
function fakeStore() {
  const calls: { op: 'finish' | 'release'; n: number; now?: number }[] = [];
  let fail = false;
  const store = {
    finish: (results: readonly FinishedAttempt[]) => {
      calls.push({ op: 'finish', n: results.length });
      return fail ? Promise.reject(new Error('disk full')) : Promise.resolve();
    },
    release: (claims: readonly unknown[], now: number) => {
      calls.push({ op: 'release', n: claims.length, now });
      return fail ? Promise.reject(new Error('disk full')) : Promise.resolve();
    },
  } as unknown as DeliveryStore;
  return { store, calls, failing: () => (fail = true) };
}

function finish(): Done {
  const delivery = deliveryRecord();
  const result: FinishedAttempt = {
    id: delivery.id,
    claim: delivery.claims,
    attempt: { deliveryId: delivery.id, at: 0, durationMs: 1, status: 200, responseBody: '', error: null },
    outcome: { status: 'delivered' },
  };
  return { kind: 'finish', sent: false, delivery, result };
}

function release(): Done {
  return { kind: 'release', sent: false, delivery: deliveryRecord() };
}

function writer(store: DeliveryStore) {
  const events: string[] = [];
  const { log, lines } = recordingLog();
  const w = new OutcomeWriter({
    store,
    log,
    now: () => 42,
    onWritten: (batch) => events.push(`written ${batch.length}`),
    onDrained: () => events.push('drained'),
  });
  return { w, events, lines };
}

test('outcomes wait up to FLUSH_DELAY_MS and are written together, attempts and releases in one call each', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const { store, calls } = fakeStore();
    const { w, events } = writer(store);
    w.push(finish());
    w.push(release());
    w.push(finish());
    mock.timers.tick(FLUSH_DELAY_MS - 1);
    await Promise.resolve();
    assert.deepEqual(calls, [], 'nothing is written before the delay');
    mock.timers.tick(1);
    await w.idle();
    assert.deepEqual(calls, [
      { op: 'finish', n: 2 },
      { op: 'release', n: 1, now: 42 },
    ]);
    assert.deepEqual(events, ['written 3', 'drained']);
  } finally {
    mock.timers.reset();
  }
});

test('a full batch is written at once, without waiting for the delay', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const { store, calls } = fakeStore();
    const { w, events } = writer(store);
    for (let i = 0; i < FLUSH_BATCH; i++) w.push(finish());
    // No clock tick at all: the batch size alone starts the write.
    await w.idle();
    assert.deepEqual(calls, [{ op: 'finish', n: FLUSH_BATCH }]);
    assert.deepEqual(events, [`written ${FLUSH_BATCH}`, 'drained']);
  } finally {
    mock.timers.reset();
  }
});

test('outcomes that arrive during a write go in the next batch of the same flush', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const { store, calls } = fakeStore();
    // The first write is held open until the test lets it finish.
    let finishing!: () => void;
    let letFinish!: () => void;
    const started = new Promise<void>((r) => (finishing = r));
    const gate = new Promise<void>((r) => (letFinish = r));
    const finishOriginal = store.finish.bind(store);
    store.finish = (results) => {
      finishing();
      return finishOriginal(results).then(() => gate);
    };
    const { w, events } = writer(store);
    w.push(finish());
    mock.timers.tick(FLUSH_DELAY_MS);
    await started;
    w.push(release());
    letFinish();
    await w.idle();
    assert.deepEqual(
      calls.map((c) => c.op),
      ['finish', 'release'],
    );
    assert.deepEqual(events, ['written 1', 'written 1', 'drained']);
  } finally {
    mock.timers.reset();
  }
});

test('a store that refuses the write is logged, and the slots are freed anyway (the leases run out)', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const { store, failing } = fakeStore();
    failing();
    const { w, events, lines } = writer(store);
    w.push(finish());
    mock.timers.tick(FLUSH_DELAY_MS);
    await w.idle();
    assert.deepEqual(events, ['written 1', 'drained']);
    assert.ok(lines.some((l) => l.msg === 'outbound webhooks: could not record attempts'));
  } finally {
    mock.timers.reset();
  }
});

test('an outcome queued while a flush drains (from onDrained) is written by a flush of its own', async () => {
  const { store, calls } = fakeStore();
  const { log } = recordingLog();
  let pushedLate = false;
  const w: OutcomeWriter = new OutcomeWriter({
    store,
    log,
    now: () => 42,
    onWritten: () => {},
    // A lease given back as the first flush ends: nothing else will come to carry it.
    onDrained: () => {
      if (pushedLate) return;
      pushedLate = true;
      w.push(release());
    },
  });
  w.push(finish());
  await w.idle();
  for (let i = 0; i < 100 && calls.length < 2; i++) await new Promise((r) => setTimeout(r, FLUSH_DELAY_MS));
  assert.deepEqual(
    calls.map((c) => c.op),
    ['finish', 'release'],
  );
});
