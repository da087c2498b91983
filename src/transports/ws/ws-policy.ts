/**
 * What the WebSocket protocol core asks of a connection's credentials, permissions, limits and
 * presence. src/auth/ws-session.ts implements it; the transport only knows this shape, so the
 * layers run one way (auth uses the transport, never the reverse).
 */

import type { ServerFrame } from '../../core/protocol.js';

/** A frame as a client sent it: parsed JSON, not yet checked (the trust line is the op's handler). */
export type IncomingFrame = Record<string, unknown>;

/** What a policy needs from its connection. */
export interface WsPolicyHost {
  reply(frame: ServerFrame): void;
  close(code: number, reason: string): void;
  /** The patterns the connection is subscribed to now. */
  connectionPatterns(): readonly string[];
}

export interface WsPolicy {
  /** Called once the connection exists: replies and closes go through `host`. */
  attach(host: WsPolicyHost): void;
  /** False when the client sent past its frame rate (the policy has closed the connection). */
  admitFrame(): boolean;
  /** Throws the HeraldError to answer unless the connection may subscribe to `pattern`. */
  authorizeSubscribe(pattern: string): void;
  /** Throws unless the connection may publish to `channel` (`allowedByConfig`: websocket.clientPublish). */
  authorizePublish(channel: string, allowedByConfig: boolean): void;
  subscribed(pattern: string, frame: IncomingFrame): void;
  unsubscribed(pattern: string): void;
  /** Handles an op the core does not know (`auth`, `presence`); false when it is not the policy's. */
  handleOp(op: unknown, frame: IncomingFrame, ref: unknown): boolean;
  /** Who the connection is now (undefined: anonymous; an `auth` op may change it) and its address. */
  identity(): string | undefined;
  readonly address: string | undefined;
  /** Gives back the connection's places (limits, presence); idempotent. */
  close(): void;
}
