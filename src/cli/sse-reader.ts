/**
 * A Server-Sent Events parser (WHATWG HTML, "Server-sent events", 9.2.6 "Interpreting an event
 * stream"), fed text as it arrives in chunks of any size. Small enough to keep `tail` free of an
 * EventSource dependency, and it hands over what EventSource hides: the `retry:` hint and the
 * id of every event, which `tail` needs to resume with `Last-Event-ID`.
 */
export interface SseMessage {
  /** The last event id seen on the stream so far (the spec's "last event ID buffer"). */
  readonly id: string | undefined;
  /** `event:`, or `message` when the frame named none. */
  readonly event: string;
  /** The `data:` lines joined by LF. */
  readonly data: string;
}

export class SseParser {
  #buffer = '';
  #sawBom = false;
  /** A chunk ended in CR: an LF at the start of the next one belongs to the same line break. */
  #pendingCr = false;
  #data: string[] = [];
  #event = '';
  #lastId: string | undefined;
  #retryMs: number | undefined;

  constructor(lastId?: string) {
    this.#lastId = lastId;
  }

  /** The last `retry:` value, in ms, or undefined when the stream sent none. */
  get retryMs(): number | undefined {
    return this.#retryMs;
  }

  get lastId(): string | undefined {
    return this.#lastId;
  }

  /** Feeds decoded text; returns the messages it completed. */
  push(text: string): SseMessage[] {
    if (!this.#sawBom && text.length > 0) {
      this.#sawBom = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.#pendingCr && text.startsWith('\n')) text = text.slice(1);
    this.#pendingCr = false;
    this.#buffer += text;
    const out: SseMessage[] = [];
    let start = 0;
    for (let i = 0; i < this.#buffer.length; i++) {
      const c = this.#buffer.charCodeAt(i);
      if (c !== 0x0a && c !== 0x0d) continue;
      const line = this.#buffer.slice(start, i);
      if (c === 0x0d) {
        if (i + 1 === this.#buffer.length) this.#pendingCr = true;
        else if (this.#buffer.charCodeAt(i + 1) === 0x0a) i++;
      }
      start = i + 1;
      const message = this.#line(line);
      if (message) out.push(message);
    }
    this.#buffer = this.#buffer.slice(start);
    return out;
  }

  #line(line: string): SseMessage | undefined {
    if (line === '') return this.#dispatch();
    if (line.startsWith(':')) return undefined; // a comment: heartbeats
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.#data.push(value);
        break;
      case 'event':
        this.#event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.#lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.#retryMs = Number(value);
        break;
    }
    return undefined;
  }

  #dispatch(): SseMessage | undefined {
    const data = this.#data;
    const event = this.#event || 'message';
    this.#data = [];
    this.#event = '';
    if (data.length === 0) return undefined;
    return { id: this.#lastId, event, data: data.join('\n') };
  }
}
