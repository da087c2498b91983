/**
 * arrays and objects: the deepest nesting Herald reads from a client. V8's JSON.parse is
 * iterative but JSON.stringify (and every walk over the value) recurses, so 20,000 levels, a
 * 40 KB body, overflowed the stack and answered 500 (a denial-of-service probe); real payloads
 * nest a few levels.
 */
export const JSON_MAX_DEPTH = 128;

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * True when the JSON text in `bytes` nests arrays and objects deeper than `max`. One pass over
 * the bytes, skipping strings; it does not validate (JSON.parse does that afterwards). A text
 * shorter than `max` bytes cannot nest deeper than `max`, so small bodies cost no scan.
 */
export function jsonDepthExceeds(bytes: Uint8Array, max: number = JSON_MAX_DEPTH): boolean {
  if (bytes.length <= max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) {
      inString = true;
    } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}
