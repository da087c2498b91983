import { randomBytes } from 'node:crypto';

/** How a client is connected: the transports as `/metrics` names them. */
export type ConnectionTransport = 'sse' | 'sse_compat' | 'ws' | 'ws_compat';

/** What a transport tells the registry about one of its connections (its functions are kept and called as they are, not as methods). */
export interface ConnectionEntry {
  readonly transport: ConnectionTransport;
  /** The principal's identity (`key:ops`, a token's `sub`); undefined when anonymous (dev mode, public channels). */
  readonly identity: () => string | undefined;
  /** The client's address as Herald sees it (`trustProxy` applied). */
  readonly address: string;
  /** Milliseconds since the epoch when the connection opened. */
  readonly connectedAt: number;
  /** The channel patterns it is subscribed to now (a WebSocket's change over its life). */
  readonly patterns: () => readonly string[];
  /** Ends the connection as an operator asked; the client may reconnect and resume. */
  readonly disconnect: () => void;
}

export interface Connection extends ConnectionEntry {
  /** Opaque, unique on this node for the life of the process (`conn_<hex>`). */
  readonly id: string;
}

/** Random bytes in a connection id: ids are not counters, so one does not reveal how many came before. */
const CONNECTION_ID_BYTES = 8;

/**
 * The client connections of this node, for the operator APIs (`/v1/channels…`,
 * `/v1/connections/{id}`): who is connected, how, since when, to what. Transports add a connection
 * once it is admitted and remove it when it closes; the registry holds nothing else, so its size
 * is the node's connection count (bounded by the connection limits).
 */
export class ConnectionRegistry {
  readonly #byId = new Map<string, Connection>();

  get size(): number {
    return this.#byId.size;
  }

  /** Registers a connection; the returned function removes it (idempotent). */
  add(entry: ConnectionEntry): { id: string; remove: () => void } {
    const id = `conn_${randomBytes(CONNECTION_ID_BYTES).toString('hex')}`;
    // The entry's own functions, not wrappers around them: three closures and a scope per
    // connection held for its whole life, at 10,000 idle connections ~2 MiB for nothing.
    const conn: Connection = {
      id,
      transport: entry.transport,
      address: entry.address,
      connectedAt: entry.connectedAt,
      identity: entry.identity,
      patterns: entry.patterns,
      disconnect: entry.disconnect,
    };
    this.#byId.set(id, conn);
    return { id, remove: () => void this.#byId.delete(id) };
  }

  get(id: string): Connection | undefined {
    return this.#byId.get(id);
  }

  /** Every connection, oldest first. */
  list(): Connection[] {
    return [...this.#byId.values()];
  }
}
