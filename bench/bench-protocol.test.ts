import assert from 'node:assert/strict';
import { test } from 'node:test';
import { payload, scanPayloads } from './bench-protocol.js';

/** Scans `bytes` cut in two at `cut`, carrying what the first scan keeps, as a subscriber does. */
function scanCut(bytes: Buffer, cut: number): [number, number][] {
  const found: [number, number][] = [];
  const first = bytes.subarray(0, cut);
  const keep = scanPayloads(first, (t, n) => found.push([t, n]));
  scanPayloads(Buffer.concat([first.subarray(keep), bytes.subarray(cut)]), (t, n) => found.push([t, n]));
  return found;
}

test('finds every payload of an SSE stream wherever a read cuts it, with send time and number', () => {
  const t1 = 1_765_069_262_123.456;
  const t2 = 1_765_069_262_124.5;
  const bytes = Buffer.from(`id: 7\nevent: message\ndata: ${payload(t1, 42)}\n\nid: 8\ndata: ${payload(t2, -3)}\n\n`);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const found = scanCut(bytes, cut);
    assert.equal(found.length, 2, `cut at ${cut}`);
    assert.ok(Math.abs(found[0]![0] - t1) < 0.001 && found[0]![1] === 42, `cut at ${cut}: ${JSON.stringify(found)}`);
    assert.ok(Math.abs(found[1]![0] - t2) < 0.001 && found[1]![1] === -3, `cut at ${cut}: ${JSON.stringify(found)}`);
  }
});

test('keeps nothing of a read that ends between payloads, and the start of one cut short', () => {
  const frame = Buffer.from(`data: ${payload(1, 1)}\n\n`);
  assert.equal(scanPayloads(frame, () => undefined), frame.length);
  const cut = Buffer.concat([frame, Buffer.from('data: {"t"')]);
  assert.equal(scanPayloads(cut, () => undefined), frame.length + 'data: '.length);
});

test('finds payloads inside WebSocket event frames (data as a JSON value)', () => {
  const found: number[] = [];
  const text = Buffer.from(`{"op":"event","id":"5","channel":"bench","type":"message","data":${payload(10.5, 5)},"time":"x"}`);
  scanPayloads(text, (_t, n) => found.push(n));
  assert.deepEqual(found, [5]);
});
