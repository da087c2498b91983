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
import type { Metrics } from '../../observability/metrics.js';
import type { ConnectionEntry, ConnectionRegistry } from '../../core/connections.js';
import type { ServerFrame } from '../../core/protocol.js';
import type { WsPolicy, WsPolicyHost } from './ws-policy.js';
import { CLOSE, closeSlow, sendBounded, SLOW_CLOSE_GRACE_MS, WsConnection, type WsConnectionShared } from './ws-connection.js';

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
 * Gives back the session's places when the socket closes before the handshake completes; the
 * returned listener is taken off once it has (the WebSocket's own 'close' does it from then on).
 * A function of its own, not a closure in the upgrade handler: that one would keep the handler's
 * scope (the upgrade request, its headers and first bytes) while it is on the socket.
 */
function closeWithSocket(socket: Duplex, session: WsPolicy): () => void {
  const release = () => session.close();
  socket.on('close', release);
  return release;
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
  /** Shared by every compat socket of the gateway (the metrics count), not one closure each. */
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

/**
 * One accepted socket: its liveness, its protocol side (a `/v1/ws` connection or a seed `/ws`
 * subscription) and its session, and the entry the operator APIs list and the host its session
 * replies through. One object per socket, its listeners shared by every socket of the gateway:
 * closures per socket (ping, pong, close, the registry's and the session's callbacks) cost over
 * a kilobyte per idle connection.
 */
class WsLink implements ConnectionEntry, WsPolicyHost {
  readonly ws: WebSocket;
  readonly transport: 'ws' | 'ws_compat';
  readonly address: string;
  readonly connectedAt = Date.now();
  readonly session: WsPolicy | undefined;
  readonly #maxBacklogBytes: number;
  /** The payload of the last ping, until the pong that echoes it comes back. */
  awaiting: Buffer | undefined;
  /** `/v1/ws`: the JSON protocol side. */
  conn: WsConnection | undefined;
  /** Seed `/ws`: the compat channel's subscription. */
  compat: CompatWsSubscription | undefined;
  /** Its id in the connection registry. */
  registryId: string | undefined;

  constructor(ws: WebSocket, transport: 'ws' | 'ws_compat', session: WsPolicy | undefined, address: string, maxBacklogBytes: number) {
    this.ws = ws;
    this.transport = transport;
    this.session = session;
    this.address = address;
    this.#maxBacklogBytes = maxBacklogBytes;
  }

  /** Cuts the connection off as a slow consumer. */
  slow(): void {
    if (this.conn) this.conn.close('slow');
    else this.compat?.cutOff('slow');
  }

  connectionIdentity(): string | undefined {
    return this.session?.identity();
  }

  connectionPatterns(): readonly string[] {
    return this.conn ? this.conn.patterns : (this.compat?.patterns ?? []);
  }

  disconnectByOperator(): void {
    if (this.conn) this.conn.close('closed');
    else this.compat?.cutOff('closed');
  }

  /** WsPolicyHost: a frame of the session's (an auth ack, a presence change), bounded like events. */
  reply(frame: ServerFrame): void {
    if (this.conn) this.conn.reply(frame);
    else if (!sendBounded(this.ws, JSON.stringify(frame), this.#maxBacklogBytes)) this.slow();
  }

  /** WsPolicyHost: closes with an auth or limit code. */
  close(code: number, reason: string): void {
    closeWith(this.ws, code, reason);
  }
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
  readonly #sockets = new Map<WebSocket, WsLink>();
  readonly #compat = new Set<CompatWsSubscription>();
  readonly #conns = new Set<WsConnection>();
  readonly #ping: Sweep<WsLink>;
  #closing = false;
  /** What every `/v1/ws` connection of this gateway shares (one object, not one per socket). */
  readonly #shared: WsConnectionShared;
  readonly #compatSlow: () => void;
  /* The listeners every socket of this gateway shares; `this` is the socket that emitted. */
  readonly #onPong: (this: WebSocket, data: Buffer) => void;
  readonly #onPing: (this: WebSocket, data: Buffer) => void;
  readonly #onError: (err: Error) => void;
  readonly #onMessage: (this: WebSocket, data: Buffer, isBinary: boolean) => void;
  readonly #onClose: (this: WebSocket) => void;

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
    this.#ping = new Sweep(opts.pingIntervalMs, () => this.#sockets.values(), (link) => this.#pingOne(link));
    const { hub, log, metrics } = opts;
    const max = opts.maxBacklogBytes;
    this.#shared = {
      hub,
      log,
      maxBacklogBytes: max,
      maxSubscriptions: opts.maxSubscriptions,
      clientPublish: opts.clientPublish,
      onSlow: () => metrics.slowDisconnect('ws'),
    };
    this.#compatSlow = () => metrics.slowDisconnect('ws_compat');
    const sockets = this.#sockets;
    this.#onPong = function (data) {
      const link = sockets.get(this);
      if (link?.awaiting !== undefined && link.awaiting.equals(data)) link.awaiting = undefined;
    };
    this.#onPing = function (data) {
      if (this.readyState !== this.OPEN) return;
      if (this.bufferedAmount > max) sockets.get(this)?.slow();
      else this.pong(data);
    };
    this.#onError = (err) => log.debug({ err }, 'websocket error');
    this.#onMessage = function (data, isBinary) {
      sockets.get(this)?.conn?.receive(data, isBinary);
    };
    const closed = (link: WsLink) => this.#closed(link);
    this.#onClose = function () {
      const link = sockets.get(this);
      if (link) closed(link);
    };
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
        const release = closeWithSocket(socket, session); // when the handshake never completes
        this.#wss.handleUpgrade(req, socket, head, (ws) => {
          socket.off('error', onError); // `ws` owns the socket's errors from here
          socket.off('close', release); // and the session's end, with the WebSocket's 'close'
          this.#accept(ws, route, session, req);
        });
      },
      (err: unknown) => (this.#opts.reject ? this.#opts.reject(socket, err) : socket.destroy()),
    );
  }

  #accept(ws: WebSocket, transport: 'ws' | 'ws_compat', session: WsPolicy | undefined, req: IncomingMessage): void {
    const { hub, metrics, log } = this.#opts;
    const max = this.#opts.maxBacklogBytes;
    const link = new WsLink(ws, transport, session, session?.address ?? req.socket.remoteAddress ?? 'unknown', max);
    this.#sockets.set(ws, link);
    metrics.connectionOpened(transport);
    ws.on('pong', this.#onPong);
    ws.on('ping', this.#onPing);
    ws.on('error', this.#onError);
    // `on`, not `once`: a socket closes once, and `once` adds a wrapper and its state per socket.
    ws.on('close', this.#onClose);
    rawSocket(ws).setNoDelay(true);
    if (transport === 'ws') {
      const conn = new WsConnection(ws, this.#shared, session);
      link.conn = conn;
      this.#conns.add(conn);
      ws.on('message', this.#onMessage);
      link.registryId = this.#opts.connections?.add(link);
      session?.attach(link);
    } else {
      const sub = new CompatWsSubscription(ws, this.#opts.compatChannel, max, this.#compatSlow);
      link.compat = sub;
      session?.attach(link);
      this.#compat.add(sub);
      link.registryId = this.#opts.connections?.add(link);
      hub.subscribe(sub).catch((err: unknown) => {
        log.error({ err }, 'compat websocket subscribe failed');
        ws.terminate();
      });
    }
  }

  /** A socket closed: everything it held goes (subscriptions, registry entry, session, counts). */
  #closed(link: WsLink): void {
    this.#sockets.delete(link.ws);
    if (link.conn) {
      link.conn.dispose();
      this.#conns.delete(link.conn);
    }
    if (link.compat) {
      this.#compat.delete(link.compat);
      this.#opts.hub.unsubscribe(link.compat);
    }
    if (link.registryId !== undefined) this.#opts.connections?.remove(link.registryId);
    this.#opts.metrics.connectionClosed(link.transport);
    link.session?.close();
  }

  /**
   * A socket that did not echo its previous ping (one period ago) read nothing in a whole period:
   * cut off as slow when bytes still wait for it, terminated as gone when none do.
   */
  #pingOne(link: WsLink): void {
    const ws = link.ws;
    if (!this.#sockets.has(ws) || ws.readyState !== ws.OPEN) return;
    if (link.awaiting !== undefined) {
      if (ws.bufferedAmount > 0) link.slow();
      else ws.terminate();
      return;
    }
    if (ws.bufferedAmount > this.#opts.maxBacklogBytes) return link.slow();
    link.awaiting = randomBytes(PING_NONCE_BYTES);
    ws.ping(link.awaiting);
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
