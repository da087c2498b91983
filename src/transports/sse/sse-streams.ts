import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { EphemeralEvent, StoredEvent } from '../../core/event.js';
import type { Hub } from '../../core/hub.js';
import type { Position } from '../../core/position.js';
import type { DisconnectReason } from '../../core/subscription.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics, Transport } from '../../observability/metrics.js';
import { isHttp2, responseGone } from '../http2-compat.js';
import { HEARTBEAT, preamble } from './sse-encoder.js';
import { releaseOpeningState } from './sse-internals.js';
import { SseSubscription, type SseOwner } from './sse-subscription.js';
import { Sweep } from '../sweep.js';
import type { ConnectionRegistry } from '../../core/connections.js';

export interface SseOptions {
  hub: Hub;
  metrics: Metrics;
  log: Logger;
  heartbeatMs: number;
  retryMs: number;
  maxBacklogBytes: number;
  /** Where the operator APIs find this node's streams (`/v1/channels/{channel}/subscribers`). */
  connections?: ConnectionRegistry;
}

export interface OpenStream {
  req: IncomingMessage;
  res: ServerResponse;
  /** Headers already decided for this response (CORS). */
  headers: OutgoingHttpHeaders;
  patterns: readonly string[];
  since: Position | undefined;
  frame: (e: StoredEvent) => Buffer;
  /** How ephemeral events are framed on this stream; absent: it does not carry them. */
  ephemeralFrame?: ((e: EphemeralEvent) => Buffer) | undefined;
  transport: Transport;
  /** Who the client is (as admitted) and its address; the socket's peer when not given. */
  identity?: string | undefined;
  address?: string | undefined;
}

/**
 * Every open SSE response. One sweep writes the same heartbeat bytes to the streams that had
 * nothing else written since their previous heartbeat, spread over the heartbeat period (see
 * Sweep): an idle stream costs no timer of its own, and a busy one no heartbeat.
 */
export class SseStreams {
  readonly #opts: SseOptions;
  /**
   * Every stream whose response has not closed yet, by its response (what its 'close' listener
   * gets): one listener shared by all of them instead of a closure each. A stream Herald ended
   * stays until its response closes, marked closed.
   */
  readonly #open = new Map<ServerResponse, SseSubscription>();
  readonly #heartbeat: Sweep<SseSubscription>;
  readonly #owner: SseOwner;
  readonly #onClose: (this: ServerResponse) => void;
  #closing = false;

  constructor(opts: SseOptions) {
    this.#opts = opts;
    this.#owner = {
      end: (sub, reason) => {
        if (reason === 'slow') opts.metrics.slowDisconnect(sub.transport);
        this.#end(sub, reason);
      },
    };
    const closed = (res: ServerResponse) => this.#closed(res);
    this.#onClose = function () {
      closed(this);
    };
    this.#heartbeat = new Sweep(opts.heartbeatMs, () => this.#open.values(), (s) => {
      if (s.closed) return;
      if (s.wroteSinceHeartbeat) s.wroteSinceHeartbeat = false;
      // Heartbeats count against the backlog bound like events: a stream that reads nothing
      // gets no more bytes queued, whatever they are.
      else if (s.backlogBytes() > s.maxBacklogBytes) s.cutOff('slow');
      else s.res.write(HEARTBEAT);
    });
  }

  /** Streams open now (not ended by Herald, response not closed). */
  get size(): number {
    let n = 0;
    for (const s of this.#open.values()) if (!s.closed) n++;
    return n;
  }

  /** Starts the event stream on `res` and subscribes it; resolves once it is live. */
  async open(o: OpenStream): Promise<void> {
    const { res, transport } = o;
    const { hub, metrics } = this.#opts;
    // The client left while it was being admitted: its 'close' has been and gone, so nothing
    // registered now would ever be undone (a subscriber in the hub, a count in the metrics).
    if (responseGone(res)) return;
    res.writeHead(200, {
      ...o.headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // HTTP/2 forbids connection-specific headers (RFC 9113 8.2.2): a stream is not a connection.
      ...(isHttp2(o.req) ? {} : { connection: 'keep-alive' }),
      // nginx and compatible proxies must not buffer the stream.
      'x-accel-buffering': 'no',
    });
    res.write(preamble(this.#opts.retryMs));
    releaseOpeningState(o.req, res);
    // Over HTTP/2 this is the connection's socket, shared with the page's other streams.
    res.socket?.setNoDelay(true);
    const sub = new SseSubscription({
      res,
      patterns: o.patterns,
      frame: o.frame,
      ephemeralFrame: o.ephemeralFrame,
      maxBacklogBytes: this.#opts.maxBacklogBytes,
      owner: this.#owner,
      transport,
      identity: o.identity,
      address: o.address ?? o.req.socket.remoteAddress ?? 'unknown',
    });
    this.#open.set(res, sub);
    metrics.connectionOpened(transport);
    sub.registryId = this.#opts.connections?.add(sub);
    // `on`, not `once`: a response closes once, and `once` adds a wrapper function and its state
    // object per stream, kept for the stream's lifetime.
    res.on('close', this.#onClose);
    try {
      await hub.subscribe(sub, o.since);
    } catch (err) {
      this.#opts.log.error({ err }, 'sse subscribe failed');
      res.destroy();
    }
    if (this.#closing) this.#end(sub, 'shutdown');
  }

  /** The response closed: the stream leaves the hub, the registry and the count. */
  #closed(res: ServerResponse): void {
    const sub = this.#open.get(res);
    if (!sub) return;
    this.#open.delete(res);
    if (sub.registryId !== undefined) this.#opts.connections?.remove(sub.registryId);
    this.#opts.hub.unsubscribe(sub);
    this.#opts.metrics.connectionClosed(sub.transport);
  }

  #end(sub: SseSubscription, reason: DisconnectReason): void {
    this.#opts.hub.unsubscribe(sub);
    if (reason === 'slow') {
      // The backlog is past its bound: nothing more can usefully be queued. The client
      // reconnects with Last-Event-ID and resumes from the log.
      this.#opts.log.warn({ patterns: sub.patterns, backlog: sub.backlogBytes() }, 'sse subscriber cut off: slow');
      sub.res.destroy();
    } else {
      sub.res.end();
    }
  }

  /** Ends every stream so clients reconnect (to another node, or after the restart). */
  closeAll(): void {
    this.#closing = true;
    this.#heartbeat.stop();
    for (const s of [...this.#open.values()]) if (!s.closed) this.#end(s, 'shutdown');
  }
}
