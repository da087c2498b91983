import type { ServerResponse } from 'node:http';
import type { EphemeralEvent, StoredEvent } from '../../core/event.js';
import { Subscription, type DisconnectReason, type ResetReason } from '../../core/subscription.js';
import type { ConnectionEntry } from '../../core/connections.js';
import type { Transport } from '../../observability/metrics.js';
import { BatchBytes, concatFrames } from '../batch-bytes.js';
import { whenDrained } from '../drain.js';
import { responseCarrier } from '../http2-compat.js';
import { resetFrame } from './sse-encoder.js';

interface Batches {
  /** The frames of a batch, for `res.write`. */
  plain: BatchBytes;
  /** The same frames as one HTTP/1.1 chunk (RFC 9112 7.1: size in hex, CRLF, data, CRLF). */
  chunked: BatchBytes;
}

/** Batch bytes per frame encoding (`/v1/stream` and the seed `/sse` frame differently); weak, so
 * an encoding made per request would not pin memory. */
const batchesByFrame = new WeakMap<(e: StoredEvent) => Buffer, Batches>();

function batchesFor(frame: (e: StoredEvent) => Buffer): Batches {
  let b = batchesByFrame.get(frame);
  if (!b) {
    b = {
      plain: new BatchBytes((events) => concatFrames(events, frame)),
      chunked: new BatchBytes((events) => {
        const body = concatFrames(events, frame);
        return Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, CRLF]);
      }),
    };
    batchesByFrame.set(frame, b);
  }
  return b;
}

const CRLF = Buffer.from('\r\n');

/** Who ends a stream that Herald cut off or an operator disconnected (SseStreams: one for all). */
export interface SseOwner {
  end(sub: SseSubscription, reason: DisconnectReason): void;
}

/**
 * One SSE response: every event goes out as the shared frame bytes of its encoding. It is also
 * the stream's entry in the connection registry, so an open stream holds no closures of its own.
 */
export class SseSubscription extends Subscription implements ConnectionEntry {
  readonly res: ServerResponse;
  readonly maxBacklogBytes: number;
  readonly #batches: Batches;
  readonly #ephemeralFrame: ((e: EphemeralEvent) => Buffer) | undefined;
  readonly #owner: SseOwner;
  readonly transport: Transport;
  readonly #identity: string | undefined;
  readonly address: string;
  readonly connectedAt = Date.now();
  /** Its id in the connection registry. */
  registryId: string | undefined;
  /** Set by every write; the heartbeat sweep skips (and clears) a stream that has it. */
  wroteSinceHeartbeat = false;

  constructor(opts: {
    res: ServerResponse;
    patterns: readonly string[];
    frame: (e: StoredEvent) => Buffer;
    /** The encoding of ephemeral events; absent: this stream does not carry them (seed `/sse`). */
    ephemeralFrame?: ((e: EphemeralEvent) => Buffer) | undefined;
    maxBacklogBytes: number;
    owner: SseOwner;
    transport: Transport;
    /** Who the client is (as admitted) and its address. */
    identity: string | undefined;
    address: string;
  }) {
    super(opts.patterns);
    this.res = opts.res;
    this.#batches = batchesFor(opts.frame);
    this.#ephemeralFrame = opts.ephemeralFrame;
    this.maxBacklogBytes = opts.maxBacklogBytes;
    this.#owner = opts.owner;
    this.transport = opts.transport;
    this.#identity = opts.identity;
    this.address = opts.address;
  }

  connectionIdentity(): string | undefined {
    return this.#identity;
  }

  connectionPatterns(): readonly string[] {
    return this.patterns;
  }

  disconnectByOperator(): void {
    this.#owner.end(this, 'closed');
  }

  /**
   * One write per subscriber per tick, of bytes shared with every subscriber of the same batch.
   * When nothing of this response waits in node's HTTP layer (its headers are out and it owns
   * the socket), the chunk, framed once per batch, goes straight to the socket: one write call
   * instead of four (size line, data, CRLF, and a cork/uncork round), which is most of the
   * fan-out's CPU. Otherwise it goes through `res.write`, which frames and orders it.
   */
  protected write(events: readonly StoredEvent[]): void {
    this.wroteSinceHeartbeat = true;
    const res = this.res;
    const socket = res.socket;
    if (socket && res.chunkedEncoding && !res.writableEnded && res.writableLength === socket.writableLength) {
      socket.write(this.#batches.chunked.of(events));
    } else {
      res.write(this.#batches.plain.of(events));
    }
  }

  protected writeReset(reason: ResetReason, headId: string): void {
    this.wroteSinceHeartbeat = true;
    this.res.write(resetFrame(reason, headId));
  }

  protected override writeEphemeral(e: EphemeralEvent): boolean {
    if (!this.#ephemeralFrame || this.res.writableEnded) return false;
    this.wroteSinceHeartbeat = true;
    this.res.write(this.#ephemeralFrame(e));
    return true;
  }

  backlogBytes(): number {
    return this.res.writableLength;
  }

  drained(): Promise<void> {
    // The socket, not the response: writes that bypass `res.write` never make it emit 'drain'.
    // Over HTTP/2 the response's own stream (writes never bypass it there: no chunkedEncoding).
    return whenDrained(responseCarrier(this.res));
  }

  protected disconnect(reason: DisconnectReason): void {
    this.#owner.end(this, reason);
  }
}
