import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EventEmitter } from 'node:events';
import * as wsPackage from 'ws';
import { textFrame } from './ws-frames.js';

/** `ws` exports its frame parser, but @types/ws does not declare it. */
interface FrameReceiver extends EventEmitter {
  write(chunk: Buffer, cb: () => void): void;
}
const { Receiver } = wsPackage as unknown as {
  Receiver: new (o: { isServer: boolean; maxPayload: number }) => FrameReceiver;
};

/** Decodes frames with the `ws` package's own receiver, as a client would. */
function decode(bytes: Buffer): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const got: string[] = [];
    const receiver = new Receiver({ isServer: false, maxPayload: 0 });
    receiver.on('message', (data: Buffer, isBinary: boolean) => {
      assert.equal(isBinary, false);
      got.push(data.toString());
    });
    receiver.on('error', reject);
    receiver.write(bytes, () => resolve(got));
  });
}

test('text frames of every length class decode with the ws receiver', async () => {
  // 7-bit, the 7/16-bit edge, 16-bit, the 16/64-bit edge, 64-bit (RFC 6455 5.2).
  for (const len of [0, 1, 125, 126, 127, 65_535, 65_536, 200_000]) {
    const text = 'é'.repeat(Math.floor(len / 2)) + 'a'.repeat(len % 2);
    assert.deepEqual(await decode(textFrame(Buffer.from(text))), [text], `payload of ${len} bytes`);
  }
});

test('several frames in one buffer arrive as several messages, in order', async () => {
  const frames = ['{"op":"event","id":"1"}', '{"op":"event","id":"2"}', 'x'.repeat(300)];
  const bytes = Buffer.concat(frames.map((f) => textFrame(Buffer.from(f))));
  assert.deepEqual(await decode(bytes), frames);
});
