import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { dataText, type StoredEvent } from '../../core/event.js';
import type { Hub } from '../../core/hub.js';
import { Subscription, type DisconnectReason, type ResetReason } from '../../core/subscription.js';
import { whenDrained } from '../drain.js';
import { rawSocket } from './ws-internals.js';
import { Sweep } from '../sweep.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics, Transport } from '../../observability/metrics.js';
import type { ConnectionRegistry } from '../../core/connections.js';
import type { WsPolicy } from './ws-policy.js';
import { CLOSE, closeSlow, sendBounded, SLOW_CLOSE_GRACE_MS, WsConnection } from './ws-connection.js';

export interface WsGatewayOptions {
  hub: Hub;
  log: Logger;
  metrics: Metrics;
  maxFrameBytes: number;
  maxBacklogBytes: number;
  maxSubscriptions: number;
  clientPublish: boolean | readonly string[];
  pingIntervalMs: number;
  /** Channel the seed route `GET /ws` receives. */
  compatChannel: string;
  /**
   * Runs before the handshake (Origin, credentials, limits: src/auth/ws-admission.ts); resolves
   * to the connection's session or rejects with the error to answer. Absent: every upgrade is
   * accepted.
   */
  admit?: (req: IncomingMessage, channels: readonly string[]) => Promise<WsPolicy>;
  /** Answers a refused upgrade (status and JSON error body). */
  reject?: (socket: Duplex, err: unknown) => void;
  /** Where the operator APIs find this node's sockets (`/v1/channels/{channel}/subscribers`). */
  connections?: ConnectionRegistry;
}

/**
 * Gives back the session's places when the socket closes. A function of its own, not a closure
 * in the upgrade handler: that one would keep the handler's scope (the upgrade request, its
 * headers and first bytes) for as long as the connection lives.
 */
function closeWithSocket(socket: Duplex, session: WsPolicy): void {
  socket.once('close', () => session.close());
}

/** Closes `ws` with an auth or limit code, and destroys it if the peer does not answer in time. */
function closeWith(ws: WebSocket, code: number, reason: string): void {
  ws.close(code, reason);
  setTimeout(() => ws.terminate(), SLOW_CLOSE_GRACE_MS).unref();
}

/** The seed `GET /ws` frame: the event's text alone, as the original example sent it. */
function plainTextFrame(e: StoredEvent): Buffer {
  let f = e.encoded.ws_plain;
  if (f === undefined) f = e.encoded.ws_plain = Buffer.from(dataText(e));
  return f;
}

/** A seed `GET /ws` socket: receives the compat channel as plain text frames, ignores input. */
class CompatWsSubscription extends Subscription {
  readonly ws: WebSocket;
  readonly maxBacklogBytes: number;
  readonly #onSlow: () => void;

  constructor(ws: WebSocket, channel: string, maxBacklogBytes: number, onSlow: () => void) {
    super([channel]);
    this.ws = ws;
    this.maxBacklogBytes = maxBacklogBytes;
    this.#onSlow = onSlow;
  }

  protected write(events: readonly StoredEvent[]): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    for (const e of events) this.ws.send(plainTextFrame(e), { binary: false });
  }

  protected writeReset(_reason: ResetReason, _headId: string): void {
    // A compat socket never resumes, so it never needs a reset.
  }

  backlogBytes(): number {
    return this.ws.bufferedAmount;
  }

  drained(): Promise<void> {
    return whenDrained(rawSocket(this.ws));
  }

  protected disconnect(reason: DisconnectReason): void {
    if (reason === 'slow') {
      if (closeSlow(this.ws)) this.#onSlow();
    } else {
      this.ws.close(CLOSE.GOING_AWAY, reason === 'shutdown' ? 'server shutting down' : 'closed');
    }
  }
}

/** The bytes of a ping's payload (RFC 6455 5.5: at most 125): unguessable, so a pong proves a read. */
const PING_NONCE_BYTES = 8;

interface Alive {
  /** The payload of the last ping, until the pong that echoes it comes back. */
  awaiting: Buffer | undefined;
  transport: Transport;
  /** Cuts the connection off as a slow consumer. */
  slow: () => void;
}

/**
 * Accepts WebSocket upgrades on `/v1/ws` (JSON protocol) and `/ws` (seed, plain text), and pings
 * every socket once per ping interval from one sweep spread over the interval (see Sweep).
 *
 * Liveness is judged by what a peer reads, never by what it sends: each ping carries a random
 * payload, and only the pong echoing it (RFC 6455 5.5.3) counts. A ping is queued behind every
 * byte sent before it, so its echo proves the peer read all of them; an unsolicited pong (5.5.3
 * allows them, as a one-way heartbeat) proves nothing and keeps no reader alive. A socket whose
 * ping went unanswered for a whole interval is cut off as slow (4000) when bytes still wait for
 * it, and terminated as gone otherwise. Every byte queued to a socket (events, replies, pongs to
 * its pings, Herald's pings) counts against its `maxBacklogBytes`.
 */
export class WsGateway {
  readonly #opts: WsGatewayOptions;
  readonly #wss: WebSocketServer;
  readonly #sockets = new Map<WebSocket, Alive>();
  readonly #compat = new Set<CompatWsSubscription>();
  readonly #conns = new Set<WsConnection>();
  readonly #ping: Sweep<[WebSocket, Alive]>;
  #closing = false;

  constructor(opts: WsGatewayOptions) {
    this.#opts = opts;
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxFrameBytes,
      perMessageDeflate: false,
      clientTracking: false,
      // Pongs to a client's pings go through the backlog bound (#accept), not straight out: a
      // client that never reads could otherwise make Herald queue a pong for every ping it sends.
      autoPong: false,
    });
    this.#ping = new Sweep(opts.pingIntervalMs, () => this.#sockets, ([ws, state]) => this.#pingOne(ws, state));
  }

  get size(): number {
    return this.#sockets.size;
  }

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head));
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // node:http hands over an upgrading socket with no 'error' listener of its own, and `ws` adds
    // one only once the handshake starts: a client that resets (RST) while it is being admitted,
    // or while its refusal is written, must not become an uncaught exception.
    const onError = (err: Error) => this.#opts.log.debug({ err }, 'websocket upgrade socket error');
    socket.on('error', onError);
    const path = (req.url ?? '/').split('?')[0];
    const route = path === '/v1/ws' ? 'ws' : path === '/ws' ? 'ws_compat' : undefined;
    if (!route || this.#closing) {
      const status = this.#closing ? '503 Service Unavailable' : '404 Not Found';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const admit = this.#opts.admit;
    if (!admit) {
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        socket.off('error', onError);
        this.#accept(ws, route, undefined, req);
      });
      return;
    }
    admit(req, route === 'ws' ? [] : [this.#opts.compatChannel]).then(
      (session) => {
        if (this.#closing || socket.destroyed) return session.close();
        closeWithSocket(socket, session); // also when the handshake never completes
        this.#wss.handleUpgrade(req, socket, head, (ws) => {
          socket.off('error', onError); // `ws` owns the socket's errors from here
          this.#accept(ws, route, session, req);
        });
      },
      (err: unknown) => (this.#opts.reject ? this.#opts.reject(socket, err) : socket.destroy()),
    );
  }

  #accept(ws: WebSocket, transport: 'ws' | 'ws_compat', session: WsPolicy | undefined, req: IncomingMessage): void {
    const { hub, metrics, log } = this.#opts;
    const max = this.#opts.maxBacklogBytes;
    const onSlow = () => metrics.slowDisconnect(transport);
    const state: Alive = { awaiting: undefined, transport, slow: () => {} };
    this.#sockets.set(ws, state);
    metrics.connectionOpened(transport);
    ws.on('pong', (data) => {
      if (state.awaiting !== undefined && state.awaiting.equals(data)) state.awaiting = undefined;
    });
    ws.on('ping', (data) => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > max) state.slow();
      else ws.pong(data);
    });
    ws.on('error', (err) => log.debug({ err }, 'websocket error'));
    rawSocket(ws).setNoDelay(true);
    if (transport === 'ws') {
      const conn = new WsConnection(ws, {
        hub,
        log,
        maxBacklogBytes: max,
        maxSubscriptions: this.#opts.maxSubscriptions,
        clientPublish: this.#opts.clientPublish,
        session,
        onSlow,
      });
      state.slow = () => conn.close('slow');
      this.#conns.add(conn);
      this.#register(ws, transport, session, req, () => conn.patterns, () => conn.close('closed'));
      ws.once('close', () => this.#conns.delete(conn));
      session?.attach({ reply: (frame) => conn.reply(frame), close: (code, reason) => closeWith(ws, code, reason) });
    } else {
      const sub = new CompatWsSubscription(ws, this.#opts.compatChannel, max, onSlow);
      state.slow = () => sub.cutOff('slow');
      session?.attach({
        reply: (frame) => sendBounded(ws, JSON.stringify(frame), max) || state.slow(),
        close: (code, reason) => closeWith(ws, code, reason),
      });
      this.#compat.add(sub);
      this.#register(ws, transport, session, req, () => sub.patterns, () => sub.cutOff('closed'));
      ws.once('close', () => {
        this.#compat.delete(sub);
        hub.unsubscribe(sub);
      });
      hub.subscribe(sub).catch((err: unknown) => {
        log.error({ err }, 'compat websocket subscribe failed');
        ws.terminate();
      });
    }
    ws.once('close', () => {
      this.#sockets.delete(ws);
      metrics.connectionClosed(transport);
      session?.close();
    });
  }

  /** Lists the socket for the operator APIs until it closes. */
  #register(
    ws: WebSocket,
    transport: 'ws' | 'ws_compat',
    session: WsPolicy | undefined,
    req: IncomingMessage,
    patterns: () => readonly string[],
    disconnect: () => void,
  ): void {
    const registered = this.#opts.connections?.add({
      transport,
      identity: () => session?.identity(),
      address: session?.address ?? req.socket.remoteAddress ?? 'unknown',
      connectedAt: Date.now(),
      patterns,
      disconnect,
    });
    if (registered) ws.once('close', registered.remove);
  }

  /**
   * A socket that did not echo its previous ping (one period ago) read nothing in a whole period:
   * cut off as slow when bytes still wait for it, terminated as gone when none do.
   */
  #pingOne(ws: WebSocket, state: Alive): void {
    if (!this.#sockets.has(ws) || ws.readyState !== ws.OPEN) return;
    if (state.awaiting !== undefined) {
      if (ws.bufferedAmount > 0) state.slow();
      else ws.terminate();
      return;
    }
    if (ws.bufferedAmount > this.#opts.maxBacklogBytes) return state.slow();
    state.awaiting = randomBytes(PING_NONCE_BYTES);
    ws.ping(state.awaiting);
  }

  /** Closes every socket with 1001 (going away) and waits, bounded, for them to finish. */
  async close(timeoutMs: number): Promise<void> {
    this.#closing = true;
    this.#ping.stop();
    for (const c of this.#conns) c.close('shutdown');
    for (const s of this.#compat) s.cutOff('shutdown');
    const deadline = Date.now() + timeoutMs;
    while (this.#sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const ws of this.#sockets.keys()) ws.terminate();
    this.#wss.close();
  }
}
