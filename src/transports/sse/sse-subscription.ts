import type { ServerResponse } from 'node:http';
import type { StoredEvent } from '../../core/event.js';
import { Subscription, type DisconnectReason, type ResetReason } from '../../core/subscription.js';
import { whenDrained } from '../drain.js';
import { resetFrame } from './sse-encoder.js';

/** One SSE response: every event goes out as the shared frame bytes of its encoding. */
export class SseSubscription extends Subscription {
  readonly res: ServerResponse;
  readonly maxBacklogBytes: number;
  readonly #frame: (e: StoredEvent) => Buffer;
  readonly #onDisconnect: (reason: DisconnectReason) => void;

  constructor(opts: {
    res: ServerResponse;
    patterns: readonly string[];
    frame: (e: StoredEvent) => Buffer;
    maxBacklogBytes: number;
    onDisconnect: (reason: DisconnectReason) => void;
  }) {
    super(opts.patterns);
    this.res = opts.res;
    this.#frame = opts.frame;
    this.maxBacklogBytes = opts.maxBacklogBytes;
    this.#onDisconnect = opts.onDisconnect;
  }

  protected write(events: readonly StoredEvent[]): void {
    if (events.length === 1) {
      this.res.write(this.#frame(events[0]!));
      return;
    }
    // One chunk per batch: one syscall and one chunked-encoding header for the whole tick.
    const frames = new Array<Buffer>(events.length);
    for (let i = 0; i < events.length; i++) frames[i] = this.#frame(events[i]!);
    this.res.write(Buffer.concat(frames));
  }

  protected writeReset(reason: ResetReason, headId: string): void {
    this.res.write(resetFrame(reason, headId));
  }

  backlogBytes(): number {
    return this.res.writableLength;
  }

  drained(): Promise<void> {
    return whenDrained(this.res);
  }

  protected disconnect(reason: DisconnectReason): void {
    this.#onDisconnect(reason);
  }
}
