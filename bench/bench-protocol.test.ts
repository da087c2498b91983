import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChunkedDecoder, payload, publishAcknowledged, publishRequest, scanPayloads } from './bench-protocol.js';

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

/** Frames as Centrifugo v6.9.1's uni-directional transports send them (captured from one). */
const CENTRIFUGO_CONNECT =
  '{"connect":{"client":"efcbc0c4-c73e-4a3f-b52e-5d6b8cb0d8a1","version":"0.0.0 OSS","subs":{"bench":{"recoverable":true,"epoch":"dyPWpMJy","positioned":true}},"ping":25,"session":"c7114289"}}';
const centrifugoPush = (t: number, n: number, offset: number) => `{"channel":"bench","pub":{"data":${payload(t, n)},"offset":${offset},"epoch":"dyPWpMJy"}}`;

/** An HTTP/1.1 chunked body of `text`, cut into chunks of `size` bytes (as Go cuts where its buffer fills). */
function chunked(text: string, size: number): Buffer {
  const body = Buffer.from(text);
  const parts: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) {
    const part = body.subarray(i, i + size);
    parts.push(Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

test("finds Centrifugo's payloads in its uni SSE stream whose chunks split them, wherever a read cuts it", () => {
  const stream = `data: ${CENTRIFUGO_CONNECT}\n\ndata: ${centrifugoPush(1_765_069_262_123.456, 7, 1)}\n\ndata: ${centrifugoPush(2.5, -2, 2)}\n\n`;
  // Chunks of 29 and 64 bytes put chunk headers inside both payloads.
  for (const size of [29, 64]) {
    const bytes = chunked(stream, size);
    for (let cut = 0; cut <= bytes.length; cut += 3) {
      const decoder = new ChunkedDecoder();
      const found: [number, number][] = [];
      let pending: Buffer | undefined;
      const scan = (data: Buffer) => {
        const buf = pending ? Buffer.concat([pending, data]) : data;
        const keep = scanPayloads(buf, (t, n) => found.push([t, n]));
        pending = keep < buf.length ? Buffer.from(buf.subarray(keep)) : undefined;
      };
      decoder.feed(bytes.subarray(0, cut), scan);
      decoder.feed(bytes.subarray(cut), scan);
      assert.equal(found.length, 2, `chunks of ${size}, cut at ${cut}: ${JSON.stringify(found)}`);
      assert.ok(Math.abs(found[0]![0] - 1_765_069_262_123.456) < 0.001 && found[0]![1] === 7);
      assert.deepEqual(found[1], [2.5, -2]);
    }
  }
});

test("finds payloads in Centrifugo's uni WebSocket messages and in nchan's raw ones", () => {
  const found: number[] = [];
  for (const text of [CENTRIFUGO_CONNECT, centrifugoPush(3, 11, 4), payload(4, 12)]) scanPayloads(Buffer.from(text), (_t, n) => found.push(n));
  assert.deepEqual(found, [11, 12]);
});

test("publishes in each server's own API: Herald's, nchan's publisher location, Centrifugo's HTTP API", () => {
  const data = payload(1, 2);
  assert.deepEqual(publishRequest({ api: 'herald' }, 'bench', data), {
    path: '/v1/publish',
    headers: { 'content-type': 'application/json' },
    body: `{"channel":"bench","data":${data}}`,
  });
  assert.equal(publishRequest({ api: 'nchan' }, 'bench', data).body, data);
  assert.equal(publishRequest({ api: 'nchan' }, 'bench', data).path, '/pub?channel=bench');
  const c = publishRequest({ api: 'centrifugo', key: 'k' }, 'bench', data);
  assert.equal(c.path, '/api/publish');
  assert.equal(c.headers['x-api-key'], 'k');
  assert.deepEqual(JSON.parse(c.body), { channel: 'bench', data: JSON.parse(data) });
  // Centrifugo refuses with 200 and an error object.
  assert.equal(publishAcknowledged({ api: 'centrifugo' }, 200, '{"error":{"code":102,"message":"unknown channel"}}'), false);
  assert.equal(publishAcknowledged({ api: 'centrifugo' }, 200, '{"result":{"offset":1,"epoch":"x"}}'), true);
  assert.equal(publishAcknowledged({ api: 'nchan' }, 202, 'queued messages: 1'), true);
});
