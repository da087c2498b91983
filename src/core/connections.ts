import { randomBytes } from 'node:crypto';

/** How a client is connected: the transports as `/metrics` names them. */
export type ConnectionTransport = 'sse' | 'sse_compat' | 'ws' | 'ws_compat';

/**
 * What a transport tells the registry about one of its connections. Methods, not function
 * fields: a transport's own per-connection object can be the entry, so registering a connection
 * costs no closures (at 10,000 idle connections three closures and a scope each are ~2 MiB).
 */
export interface ConnectionEntry {
  readonly transport: ConnectionTransport;
  /** The client's address as Herald sees it (`trustProxy` applied). */
  readonly address: string;
  /** Milliseconds since the epoch when the connection opened. */
  readonly connectedAt: number;
  /** The principal's identity now (`key:ops`, a token's `sub`); undefined when anonymous. */
  connectionIdentity(): string | undefined;
  /** The channel patterns it is subscribed to now (a WebSocket's change over its life). */
  connectionPatterns(): readonly string[];
  /** Ends the connection as an operator asked; the client may reconnect and resume. */
  disconnectByOperator(): void;
}

/** A connection as the operator APIs see it (its functions are called as they are, not as methods). */
export interface Connection {
  /** Opaque, unique on this node for the life of the process (`conn_<hex>`). */
  readonly id: string;
  readonly transport: ConnectionTransport;
  readonly address: string;
  readonly connectedAt: number;
  /** The principal's identity (`key:ops`, a token's `sub`); undefined when anonymous (dev mode, public channels). */
  readonly identity: () => string | undefined;
  readonly patterns: () => readonly string[];
  readonly disconnect: () => void;
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
  readonly #byId = new Map<string, ConnectionEntry>();

  get size(): number {
    return this.#byId.size;
  }

  /** Registers a connection and returns its id, for `remove` when it closes. */
  add(entry: ConnectionEntry): string {
    const id = `conn_${randomBytes(CONNECTION_ID_BYTES).toString('hex')}`;
    this.#byId.set(id, entry);
    return id;
  }

  /** Forgets a connection (idempotent). */
  remove(id: string): void {
    this.#byId.delete(id);
  }

  get(id: string): Connection | undefined {
    const entry = this.#byId.get(id);
    return entry && view(id, entry);
  }

  /** Every connection, oldest first. */
  list(): Connection[] {
    const out: Connection[] = [];
    for (const [id, entry] of this.#byId) out.push(view(id, entry));
    return out;
  }
}

/** The operator's view of an entry, made when asked for (the operator APIs), never kept. */
function view(id: string, e: ConnectionEntry): Connection {
  return {
    id,
    transport: e.transport,
    address: e.address,
    connectedAt: e.connectedAt,
    identity: () => e.connectionIdentity(),
    patterns: () => e.connectionPatterns(),
    disconnect: () => e.disconnectByOperator(),
  };
}
