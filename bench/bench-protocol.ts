/**
 * What the benchmark's processes share: the clock, the event payload, the cheap scanner that
 * finds payloads in received bytes, and the latency histogram that travels between processes.
 */

/**
 * Milliseconds on the machine's monotonic clock (CLOCK_MONOTONIC, one clock for every process),
 * with sub-millisecond precision: a send time stamped in one process and a receive time read in
 * another compare exactly. Not `performance.timeOrigin + performance.now()`: each process takes
 * that origin from the wall clock as it starts, and a process descheduled in between (eight
 * started at once on two busy cores) is off by milliseconds for its whole life, which once
 * showed as a p50 of 0.01 ms.
 */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Bytes of the published `data` value (JSON text), as the benchmark brief asks (~100 B). */
export const PAYLOAD_BYTES = 100;

/** Every payload starts with this, so receivers find it without parsing JSON or SSE. */
export const MARKER = Buffer.from('{"t":');

/**
 * The published `data` value: send time, sequence number (negative for probes, which are not
 * measured), padding to PAYLOAD_BYTES. `t` is first so MARKER finds it.
 */
export function payload(t: number, n: number): string {
  const head = `{"t":${t.toFixed(3)},"n":${n},"p":"`;
  const pad = Math.max(0, PAYLOAD_BYTES - head.length - 2);
  return `${head}${'x'.repeat(pad)}"}`;
}

/** One payload found in a byte stream. */
export interface Found {
  t: number;
  n: number;
}

const COMMA = 0x2c;
const N_FIELD = Buffer.from('"n":');

/** Where the number `readNumber` read last ends. */
let numberEnd = 0;

/**
 * Reads a decimal number (`-`, digits, a fraction) from its bytes at `pos`, with no string made,
 * and sets `numberEnd` past it; NaN when the bytes end before the number does.
 */
function readNumber(buf: Buffer, pos: number): number {
  const len = buf.length;
  const negative = pos < len && buf[pos] === MINUS;
  if (negative) pos++;
  let v = 0;
  let c = 0;
  while (pos < len && (c = buf[pos]!) >= ZERO && c <= NINE) {
    v = v * 10 + (c - ZERO);
    pos++;
  }
  if (pos < len && c === DOT) {
    pos++;
    let scale = 0.1;
    while (pos < len && (c = buf[pos]!) >= ZERO && c <= NINE) {
      v += (c - ZERO) * scale;
      scale /= 10;
      pos++;
    }
  }
  numberEnd = pos;
  if (pos >= len) return Number.NaN;
  return negative ? -v : v;
}

const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/**
 * Finds every complete payload head in `buf` from `from`, calling `fn` for each, and returns the
 * offset where an incomplete one starts (to keep for the next read) or where scanning may resume.
 * Works on SSE streams (chunked or not: chunk headers never split a frame Herald or the
 * baseline wrote in one call) and on WebSocket messages alike: one native `indexOf` per payload,
 * numbers read from the bytes, and nothing kept from a read unless a payload starts in its last
 * bytes (the subscribers run on the cores the servers are measured on).
 */
export function scanPayloads(buf: Buffer, fn: (t: number, n: number) => void): number {
  let pos = 0;
  for (;;) {
    const at = buf.indexOf(MARKER, pos);
    if (at < 0) {
      // Only a `{` in the last bytes can be the start of a marker cut by the end of the read.
      const brace = buf.indexOf(MARKER[0]!, Math.max(pos, buf.length - MARKER.length + 1));
      return brace < 0 ? buf.length : brace;
    }
    const t = readNumber(buf, at + MARKER.length);
    if (Number.isNaN(t)) return at;
    if (buf[numberEnd] !== COMMA) {
      pos = at + 1;
      continue;
    }
    const nAt = numberEnd + 1 + N_FIELD.length;
    if (nAt >= buf.length) return at;
    const n = readNumber(buf, nAt);
    if (Number.isNaN(n)) return at;
    fn(t, n);
    pos = numberEnd;
  }
}

/**
 * Takes the chunk headers out of an HTTP/1.1 chunked body as it arrives, handing on the chunks'
 * bytes as slices of the reads (no copy). Needed where a server's chunk boundaries may fall
 * inside an SSE frame (Go's net/http cuts a body into chunks where its 4 KiB buffer fills, so
 * Centrifugo's pushes may be split mid-payload); Herald, the baselines and nchan write whole
 * frames per chunk or no chunks at all, and are read without it.
 */
export class ChunkedDecoder {
  /** Bytes of chunk data still to come in the current chunk. */
  #left = 0;
  /** Bytes of the CRLF after a chunk's data still to skip. */
  #crlf = 0;
  /** Size of the chunk whose size line is being read. */
  #size = 0;
  /** Past the `;` of a chunk extension (ignored up to the line's end). */
  #inExtension = false;

  /** Hands `data` every run of chunk data in `buf`, in order. */
  feed(buf: Buffer, data: (slice: Buffer) => void): void {
    let pos = 0;
    const len = buf.length;
    while (pos < len) {
      if (this.#left > 0) {
        const end = Math.min(len, pos + this.#left);
        data(buf.subarray(pos, end));
        this.#left -= end - pos;
        pos = end;
        if (this.#left === 0) this.#crlf = 2;
        continue;
      }
      if (this.#crlf > 0) {
        pos++;
        this.#crlf--;
        continue;
      }
      // A size line: hex digits, an optional extension, CRLF.
      const c = buf[pos++]!;
      if (c === LF) {
        this.#left = this.#size;
        this.#size = 0;
        this.#inExtension = false;
        // A chunk of size 0 ends the body: nothing follows that the scanner needs.
      } else if (c === SEMICOLON) this.#inExtension = true;
      else if (!this.#inExtension && c !== CR) this.#size = this.#size * 16 + hexValue(c);
    }
  }
}

const LF = 0x0a;
const CR = 0x0d;
const SEMICOLON = 0x3b;

function hexValue(c: number): number {
  if (c >= ZERO && c <= NINE) return c - ZERO;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : 0;
}

/**
 * Latency histogram: 10 µs buckets up to 100 ms, then 1 ms buckets up to 60 s, so p99 keeps
 * its precision where targets are set and a slow run still has an honest tail. Sparse pairs
 * cross process boundaries.
 */
export class LatencyHistogram {
  static readonly FINE_US = 10;
  static readonly FINE_LIMIT_MS = 100;
  static readonly COARSE_LIMIT_MS = 60_000;
  readonly #fine = new Uint32Array((LatencyHistogram.FINE_LIMIT_MS * 1000) / LatencyHistogram.FINE_US);
  readonly #coarse = new Uint32Array(LatencyHistogram.COARSE_LIMIT_MS);
  count = 0;
  max = 0;
  sum = 0;

  record(ms: number): void {
    if (ms < 0) ms = 0;
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
    if (ms < LatencyHistogram.FINE_LIMIT_MS) this.#fine[Math.floor((ms * 1000) / LatencyHistogram.FINE_US)]!++;
    else this.#coarse[Math.min(this.#coarse.length - 1, Math.floor(ms))]!++;
  }

  /** Value at quantile q (0..1), in ms: the upper edge of the bucket that holds it. */
  quantile(q: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.#fine.length; i++) {
      seen += this.#fine[i]!;
      if (seen >= rank) return ((i + 1) * LatencyHistogram.FINE_US) / 1000;
    }
    for (let i = 0; i < this.#coarse.length; i++) {
      seen += this.#coarse[i]!;
      if (seen >= rank) return Math.min(i + 1, this.max);
    }
    return this.max;
  }

  toSparse(): SparseHistogram {
    const fine: number[] = [];
    const coarse: number[] = [];
    this.#fine.forEach((c, i) => c > 0 && fine.push(i, c));
    this.#coarse.forEach((c, i) => c > 0 && coarse.push(i, c));
    return { fine, coarse, count: this.count, max: this.max, sum: this.sum };
  }

  merge(s: SparseHistogram): void {
    for (let i = 0; i < s.fine.length; i += 2) this.#fine[s.fine[i]!]! += s.fine[i + 1]!;
    for (let i = 0; i < s.coarse.length; i += 2) this.#coarse[s.coarse[i]!]! += s.coarse[i + 1]!;
    this.count += s.count;
    this.sum += s.sum;
    if (s.max > this.max) this.max = s.max;
  }
}

export interface SparseHistogram {
  fine: number[];
  coarse: number[];
  count: number;
  max: number;
  sum: number;
}

/** Subscriber transports the benchmark drives. */
export type Transport = 'sse' | 'ws';

/**
 * The API a server under test speaks: Herald's own (also the naive baselines' and the floor's),
 * nchan's (nginx), or Centrifugo's. Payloads reach subscribers verbatim in all three (SSE `data:`
 * lines or WebSocket text: raw for nchan, inside a JSON push for Centrifugo, inside an event for
 * Herald), so `scanPayloads` reads every one; what differs is how to publish and subscribe.
 */
export type ServerApi = 'herald' | 'nchan' | 'centrifugo';

/** How to publish to a server: its API and, for Centrifugo, the HTTP API key. */
export interface PublishApi {
  api: ServerApi;
  key?: string | undefined;
}

/** One publish as an HTTP request: `POST path` with these headers and body. */
export function publishRequest(p: PublishApi, channel: string, data: string): { path: string; headers: Record<string, string>; body: string } {
  switch (p.api) {
    case 'nchan':
      // nchan's publisher location stores and sends the body as it is.
      return { path: `/pub?channel=${encodeURIComponent(channel)}`, headers: { 'content-type': 'application/json' }, body: data };
    case 'centrifugo':
      return {
        path: '/api/publish',
        headers: { 'content-type': 'application/json', 'x-api-key': p.key ?? '' },
        body: `{"channel":"${channel}","data":${data}}`,
      };
    default:
      return { path: '/v1/publish', headers: { 'content-type': 'application/json' }, body: `{"channel":"${channel}","data":${data}}` };
  }
}

/**
 * Whether an answer of 2xx is an acknowledged publish. Centrifugo's HTTP API answers 200 with
 * `{"error":{...}}` when it refuses a publish, so its body is read.
 */
export function publishAcknowledged(p: PublishApi, status: number, body: string): boolean {
  if (status < 200 || status >= 300) return false;
  return p.api !== 'centrifugo' || !body.includes('"error"');
}

/**
 * What a WebSocket subscriber sends once upgraded, and when its subscription is live: Herald
 * takes a subscribe message and acks it; nchan subscribes by URL and sends nothing until the
 * first message (live at the upgrade); Centrifugo's uni-directional WebSocket takes the connect
 * request in the URL (`cf_connect`) and answers with a connect push.
 */
export function wsSubscribe(api: ServerApi, channel: string): { hello?: string; liveOnUpgrade: boolean } {
  if (api === 'nchan') return { liveOnUpgrade: true };
  if (api === 'centrifugo') return { liveOnUpgrade: false };
  return { hello: JSON.stringify({ op: 'subscribe', channel, ref: 1 }), liveOnUpgrade: false };
}

/** What a client worker reports about the measured window. */
export interface WorkerStats {
  open: number;
  /** Measured events received (n >= the window's first number), once per connection. */
  received: number;
  /** Events received twice on one connection (must stay 0). */
  duplicates: number;
  /** Connections that closed while the window was open. */
  dropped: number;
  firstAt: number;
  lastAt: number;
  histogram: SparseHistogram;
}
