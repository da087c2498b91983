import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeStoredEvent, type StoredEvent } from '../core/event.js';
import { BatchBytes, concatFrames } from './batch-bytes.js';

const frame = (e: StoredEvent) => Buffer.from(`<${e.seq}>`);
const events = [1, 2, 3].map((seq) => makeStoredEvent(seq, 'orders', 'message', '"x"', 0, 'test01'));

test('subscribers of the same batch share one buffer, encoded once', () => {
  let encoded = 0;
  const batches = new BatchBytes((list) => {
    encoded++;
    return concatFrames(list, frame);
  });
  const first = batches.of([...events]);
  const second = batches.of([...events]);
  assert.equal(first.toString(), '<1><2><3>');
  assert.equal(second, first, 'the same Buffer, not a copy');
  assert.equal(encoded, 1);
});

test('a different list of events gets its own bytes', () => {
  const batches = new BatchBytes((list) => concatFrames(list, frame));
  assert.equal(batches.of([events[0]!, events[2]!]).toString(), '<1><3>');
  assert.equal(batches.of([events[0]!, events[1]!]).toString(), '<1><2>');
  assert.equal(batches.of([events[1]!]).toString(), '<2>');
  // Same ids, other objects (a replay reads new ones from the log): encoded again, same bytes.
  const replayed = makeStoredEvent(2, 'orders', 'message', '"x"', 0, 'test01');
  assert.equal(batches.of([replayed]).toString(), '<2>');
});

test('changing a list after the call does not fool the next caller', () => {
  const batches = new BatchBytes((list) => concatFrames(list, frame));
  const list = [events[0]!, events[1]!];
  assert.equal(batches.of(list).toString(), '<1><2>');
  list[1] = events[2]!;
  assert.equal(batches.of(list).toString(), '<1><3>');
});
