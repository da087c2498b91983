import type { WebSocket } from 'ws';
import { checkChannel, matches } from '../../core/channel.js';
import { HeraldError, type ErrorCode } from '../../core/errors.js';
import { ephemeralJsonText, eventJsonText, toEventInput, wantsEphemeral, type EphemeralEvent, type StoredEvent } from '../../core/event.js';
import { parsePosition } from '../../core/position.js';
import type { Hub } from '../../core/hub.js';
import {
  Subscription,
  type DisconnectReason,
  type DispatchGroup,
  type ResetReason,
} from '../../core/subscription.js';
import { BatchBytes, concatFrames } from '../batch-bytes.js';
import { whenDrained } from '../drain.js';
import { rawSocket } from './ws-internals.js';
import { textFrame } from './ws-frames.js';
import type { Logger } from '../../observability/logger.js';
import type { IncomingFrame, WsPolicy } from './ws-policy.js';
import { CLOSE, type AckFrame, type ErrorFrame, type Ref, type ServerFrame } from '../../core/protocol.js';

export { CLOSE };

/** How long a slow peer gets to read the close frame before its socket is destroyed. */
export const SLOW_CLOSE_GRACE_MS = 2_000;

/** The close reason of a connection cut off for not reading (its backlog bound, or no pong). */
export const SLOW_CLOSE_REASON = 'slow consumer: reconnect and resume with since';

/**
 * Closes `ws` as a slow consumer (4000) and destroys its socket if the peer has not read the close
 * frame within SLOW_CLOSE_GRACE_MS. Returns false when it was already closing.
 */
export function closeSlow(ws: WebSocket): boolean {
  if (ws.readyState !== ws.OPEN) return false;
  ws.close(CLOSE.SLOW_CONSUMER, SLOW_CLOSE_REASON);
  setTimeout(() => ws.terminate(), SLOW_CLOSE_GRACE_MS).unref();
  return true;
}

/**
 * Sends one frame Herald makes for this connection alone (a reply, an error, a presence change),
 * unless its unsent bytes are already past `maxBacklogBytes`: then nothing is queued and false is
 * returned, and the caller cuts the connection off. Replies count against the same bound as
 * events: a client that never reads but keeps sending bad ops would otherwise make Herald queue
 * their answers without limit (a memory exhaustion attack that costs the client one frame each).
 * At most one frame is queued past the bound.
 */
export function sendBounded(ws: WebSocket, text: string, maxBacklogBytes: number): boolean {
  if (ws.readyState !== ws.OPEN) return true;
  if (ws.bufferedAmount > maxBacklogBytes) return false;
  ws.send(text);
  return true;
}

/** The longest client `ref` echoed back (a string), so a ref cannot amplify replies. */
const REF_MAX_CHARS = 128;

/** What every connection of a gateway shares: one object for all of them, not one each. */
export interface WsConnectionShared {
  readonly hub: Hub;
  readonly log: Logger;
  readonly maxBacklogBytes: number;
  readonly maxSubscriptions: number;
  /** `true`, `false`, or the channel patterns clients may publish to. */
  readonly clientPublish: boolean | readonly string[];
  /** Called once when a connection is cut off as slow (for the metrics). */
  readonly onSlow?: (() => void) | undefined;
}

/** The JSON event frame, made once per event and shared by every WebSocket subscriber. */
export function eventFrame(e: StoredEvent): Buffer {
  let f = e.encoded.ws;
  if (f === undefined) f = e.encoded.ws = Buffer.from(eventJsonText(e, '"op":"event",'));
  return f;
}

/** The JSON frame of an ephemeral event (no id), made once and shared like eventFrame. */
function ephemeralFrame(e: EphemeralEvent): Buffer {
  let f = e.encoded.ws;
  if (f === undefined) f = e.encoded.ws = Buffer.from(ephemeralJsonText(e, '"op":"event",'));
  return f;
}

/** The event frame on the wire (header and payload), made once per event. */
function wireFrame(e: StoredEvent): Buffer {
  let f = e.encoded.ws_wire;
  if (f === undefined) f = e.encoded.ws_wire = textFrame(eventFrame(e));
  return f;
}

/** A dispatch batch on the wire, shared by every connection that receives the same batch. */
const wireBatches = new BatchBytes((events) => concatFrames(events, wireFrame));

class WsSubscription extends Subscription {
  readonly #conn: WsConnection;
  readonly pattern: string;

  constructor(conn: WsConnection, pattern: string, group: DispatchGroup) {
    super([pattern], group);
    this.#conn = conn;
    this.pattern = pattern;
  }

  get maxBacklogBytes(): number {
    return this.#conn.maxBacklogBytes;
  }

  protected write(events: readonly StoredEvent[]): void {
    this.#conn.sendEvents(events);
  }

  protected writeReset(reason: ResetReason, headId: string): void {
    this.#conn.reply({ op: 'reset', channel: this.pattern, reason, id: headId });
  }

  protected override writeEphemeral(e: EphemeralEvent): boolean {
    const ws = this.#conn.ws;
    if (ws.readyState !== ws.OPEN) return false;
    ws.send(ephemeralFrame(e), { binary: false });
    return true;
  }

  backlogBytes(): number {
    return this.#conn.ws.bufferedAmount;
  }

  drained(): Promise<void> {
    return whenDrained(rawSocket(this.#conn.ws));
  }

  protected disconnect(reason: DisconnectReason): void {
    this.#conn.close(reason);
  }
}

/**
 * One `/v1/ws` connection: its subscriptions and the JSON protocol of its frames. Its owner (the
 * gateway) hands it the socket's messages (`receive`) and tells it when the socket closed
 * (`dispose`), from listeners shared by every socket.
 */
export class WsConnection {
  readonly ws: WebSocket;
  readonly #opts: WsConnectionShared;
  /** Credentials, permissions, limits and presence of this connection (src/auth/ws-session.ts). */
  readonly #session: WsPolicy | undefined;
  readonly #subs = new Map<string, WsSubscription>();
  readonly #group: DispatchGroup = { lastDispatched: 0 };
  #closed = false;

  constructor(ws: WebSocket, shared: WsConnectionShared, session?: WsPolicy) {
    this.ws = ws;
    this.#opts = shared;
    this.#session = session;
  }

  get maxBacklogBytes(): number {
    return this.#opts.maxBacklogBytes;
  }

  /** The patterns this connection is subscribed to now. */
  get patterns(): string[] {
    return [...this.#subs.keys()];
  }

  sendEvents(events: readonly StoredEvent[]): void {
    const ws = this.ws;
    if (ws.readyState !== ws.OPEN) return;
    const socket = rawSocket(ws);
    // When `ws` holds nothing of its own (no message queued behind compression: Herald turns
    // permessage-deflate off), the batch's frames go straight to the socket in one write of
    // bytes shared by every subscriber: `ws.send` would make a header and a write per frame per
    // subscriber, most of the fan-out's CPU. Order is kept: both paths write to the same socket.
    if (ws.bufferedAmount === socket.writableLength) {
      socket.write(wireBatches.of(events));
      return;
    }
    if (events.length === 1) {
      ws.send(eventFrame(events[0]!), { binary: false });
      return;
    }
    // Cork so a tick's frames leave in one write (ws corks per frame; corks nest).
    socket.cork();
    for (const e of events) ws.send(eventFrame(e), { binary: false });
    socket.uncork();
  }

  reply(frame: ServerFrame): void {
    if (!sendBounded(this.ws, JSON.stringify(frame), this.#opts.maxBacklogBytes)) this.close('slow');
  }

  #error(ref: unknown, code: ErrorCode, message: string): void {
    this.reply(withRef<ErrorFrame>({ op: 'error', code, message }, ref));
  }

  close(reason: DisconnectReason): void {
    if (this.#closed) return;
    this.dispose();
    const ws = this.ws;
    if (reason === 'slow') {
      this.#opts.log.warn({ backlog: ws.bufferedAmount }, 'websocket subscriber cut off: slow');
      if (closeSlow(ws)) this.#opts.onSlow?.();
    } else {
      ws.close(CLOSE.GOING_AWAY, reason === 'shutdown' ? 'server shutting down' : 'closed');
    }
  }

  /** The socket closed (or is closing): every subscription leaves the hub. Idempotent. */
  dispose(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#subs.values()) this.#opts.hub.unsubscribe(s);
    this.#subs.clear();
  }

  /** A frame from the client. */
  receive(data: Buffer, isBinary: boolean): void {
    if (this.#session && !this.#session.admitFrame()) return;
    if (isBinary) {
      this.#error(undefined, 'BINARY_UNSUPPORTED', 'binary frames are not supported; send JSON text');
      return;
    }
    let frame: unknown;
    try {
      frame = JSON.parse(data.toString('utf8'));
    } catch {
      this.#error(undefined, 'JSON_INVALID', 'the frame is not valid JSON');
      return;
    }
    if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) {
      this.#error(undefined, 'FRAME_INVALID', 'a frame is a JSON object with an "op"');
      return;
    }
    const f = frame as IncomingFrame;
    const ref = f.ref;
    try {
      switch (f.op) {
        case 'subscribe':
          this.#subscribe(f, ref);
          return;
        case 'unsubscribe':
          this.#unsubscribe(f, ref);
          return;
        case 'publish':
          this.#publish(f, ref);
          return;
        default:
          if (this.#session?.handleOp(f.op, f, ref)) return;
          this.#error(
            ref,
            typeof f.op === 'string' ? 'OP_UNKNOWN' : 'FRAME_INVALID',
            typeof f.op === 'string' ? `unknown op "${f.op.slice(0, 64)}"` : 'a frame needs a string "op"',
          );
      }
    } catch (err) {
      if (err instanceof HeraldError) this.#error(ref, err.code, err.message);
      else {
        this.#opts.log.error({ err }, 'websocket frame failed');
        this.#error(ref, 'INTERNAL', 'internal error');
      }
    }
  }

  #subscribe(f: IncomingFrame, ref: unknown): void {
    const check = checkChannel(f.channel);
    if (!check.ok) throw new HeraldError('CHANNEL_INVALID', check.reason);
    const pattern = f.channel as string;
    if (this.#subs.has(pattern)) throw new HeraldError('ALREADY_SUBSCRIBED', `already subscribed to ${pattern}`);
    if (this.#subs.size >= this.#opts.maxSubscriptions) {
      throw new HeraldError('TOO_MANY_SUBSCRIPTIONS', `at most ${this.#opts.maxSubscriptions} subscriptions per connection`);
    }
    this.#session?.authorizeSubscribe(pattern);
    const since = f.since === undefined || f.since === null ? undefined : parsePosition(f.since);
    const sub = new WsSubscription(this, pattern, this.#group);
    this.#subs.set(pattern, sub);
    this.#session?.subscribed(pattern, f);
    // The ack goes first, so replayed events follow the answer to the request that asked for them.
    this.reply(withRef<AckFrame>({ op: 'ack', channel: pattern }, ref));
    this.#opts.hub.subscribe(sub, since).catch((err: unknown) => {
      this.#subs.delete(pattern);
      this.#session?.unsubscribed(pattern);
      this.#opts.log.error({ err }, 'websocket subscribe failed');
      this.#error(ref, 'STORE_UNAVAILABLE', 'the subscription could not be started');
    });
  }

  #unsubscribe(f: IncomingFrame, ref: unknown): void {
    const check = checkChannel(f.channel);
    if (!check.ok) throw new HeraldError('CHANNEL_INVALID', check.reason);
    const sub = this.#subs.get(f.channel as string);
    if (!sub) throw new HeraldError('NOT_SUBSCRIBED', `not subscribed to ${String(f.channel)}`);
    this.#subs.delete(sub.pattern);
    this.#opts.hub.unsubscribe(sub);
    this.#session?.unsubscribed(sub.pattern);
    this.reply(withRef<AckFrame>({ op: 'ack', channel: sub.pattern }, ref));
  }

  #publish(f: IncomingFrame, ref: unknown): void {
    const ephemeral = wantsEphemeral(f);
    const input = toEventInput(f);
    const allowed = this.#opts.clientPublish;
    const open = allowed === true || (Array.isArray(allowed) && allowed.some((p) => matches(p, input.channel)));
    if (this.#session) this.#session.authorizePublish(input.channel, open);
    else if (!open) {
      throw new HeraldError('PUBLISH_FORBIDDEN', `clients may not publish to ${input.channel} (websocket.clientPublish)`);
    }
    if (ephemeral) {
      this.#opts.hub.signal(input);
      this.reply(withRef<AckFrame>({ op: 'ack', ephemeral: true }, ref));
      return;
    }
    this.#opts.hub.publish([input]).then(
      ([r]) => this.reply(withRef<AckFrame>({ op: 'ack', id: r!.event.id }, ref)),
      (err: unknown) => {
        const e = err instanceof HeraldError ? err : new HeraldError('STORE_UNAVAILABLE');
        this.#error(ref, e.code, e.message);
      },
    );
  }
}

/** Echoes the client's `ref` (bounded strings, finite numbers) on a reply. */
export function withRef<F extends { ref?: Ref }>(frame: F, ref: unknown): F {
  if (typeof ref === 'number' && Number.isFinite(ref)) frame.ref = ref;
  else if (typeof ref === 'string') frame.ref = ref.slice(0, REF_MAX_CHARS);
  return frame;
}
