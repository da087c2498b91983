/**
 * WebSocket frames built by Herald for the fan-out path (RFC 6455 5.2): final, unmasked text
 * frames, as a server sends them. Building them here lets one buffer hold a whole batch of
 * frames, shared by every subscriber, where `ws.send` would make two buffers per frame per
 * subscriber.
 */

/** RFC 6455 5.2: FIN set, opcode 0x1 (text). */
const FIN_TEXT = 0x81;
/** Payload lengths up to this fit the 7-bit length field. */
const MAX_7BIT = 125;
/** Payload lengths up to this use the 16-bit extended length (marker 126). */
const MAX_16BIT = 0xffff;

/** One final, unmasked text frame holding `payload` (UTF-8 JSON text). */
export function textFrame(payload: Buffer): Buffer {
  const len = payload.length;
  const head = len <= MAX_7BIT ? 2 : len <= MAX_16BIT ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + len);
  frame[0] = FIN_TEXT;
  if (len <= MAX_7BIT) {
    frame[1] = len;
  } else if (len <= MAX_16BIT) {
    frame[1] = 126;
    frame.writeUInt16BE(len, 2);
  } else {
    // 64-bit length, most significant bit 0 (5.2); payloads here stay far below 2^53.
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    frame.writeUInt32BE(len >>> 0, 6);
  }
  payload.copy(frame, head);
  return frame;
}
