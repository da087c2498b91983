/** milliseconds between two heartbeats of a node (its record in the node directory). */
export const NODE_HEARTBEAT_MS = 5_000;
/**
 * milliseconds after its last heartbeat when a node's record is expired: three heartbeats, so a
 * slow write or two does not make a live node vanish, and a node that stopped or died is gone
 * within this long.
 */
export const NODE_EXPIRY_MS = 3 * NODE_HEARTBEAT_MS;

/** What one node of a deployment says about itself in each heartbeat (`GET /v1/nodes`). */
export interface NodeRecord {
  /** The node's name on its leases (`host/pid/random`), new at each start. */
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  /** Milliseconds since the epoch: when the node started, and when it last wrote this record. */
  readonly startedAt: number;
  readonly lastSeenAt: number;
  /** Client connections by transport (`sse`, `sse_compat`, `ws`, `ws_compat`; absent: none). */
  readonly connections: Readonly<Record<string, number>>;
  /** (connection, channel pattern) pairs this node dispatches to. */
  readonly subscriptions: number;
  /** Events this node appended to the log since it started, and events it wrote to subscribers. */
  readonly published: number;
  readonly delivered: number;
  /**
   * How far this node's dispatch is behind the log: the log's head seq when the record was made,
   * the last seq the node handed to its subscribers, and the difference (0: caught up).
   */
  readonly lag: { readonly headSeq: number; readonly dispatchedSeq: number; readonly events: number };
}

/**
 * The nodes of a deployment, one record each: part of the backend set (src/stores/backend.ts),
 * shared by exactly the nodes that share the log (workers on one SQLite file, nodes on one
 * Redis, nodes on one Postgres).
 *
 * - `beat` writes (replaces) the record of `record.id`.
 * - `list(now)` returns the records seen within NODE_EXPIRY_MS of `now`, sorted by id; records
 *   older than that are never listed (a node that died stops beating), and may be deleted.
 * - `remove(id)` deletes a record at once (a node that closes gracefully).
 */
export interface NodeDirectory {
  beat(record: NodeRecord): Promise<void>;
  list(now: number): Promise<NodeRecord[]>;
  remove(id: string): Promise<void>;
}

/**
 * Writes this node's record every NODE_HEARTBEAT_MS, from `snapshot`. A failed write is reported
 * to `onError` once per outage (the backend's own checks say it is down) and tried again at the
 * next beat. `stop` removes the record, so a node that closes leaves the list at once.
 */
export class NodeHeartbeat {
  readonly #directory: NodeDirectory;
  readonly #snapshot: () => Promise<NodeRecord>;
  readonly #onError: (err: unknown) => void;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #beating: Promise<void> | undefined;
  #failing = false;
  #id: string | undefined;

  constructor(opts: {
    directory: NodeDirectory;
    snapshot: () => Promise<NodeRecord>;
    onError: (err: unknown) => void;
    intervalMs?: number;
  }) {
    this.#directory = opts.directory;
    this.#snapshot = opts.snapshot;
    this.#onError = opts.onError;
    this.#intervalMs = opts.intervalMs ?? NODE_HEARTBEAT_MS;
  }

  /** Beats now (resolves once the first record is written or failed), then every interval. */
  start(): Promise<void> {
    if (this.#timer) return Promise.resolve();
    this.#timer = setInterval(() => void this.beat(), this.#intervalMs);
    this.#timer.unref();
    return this.beat();
  }

  /** Writes the record now (a beat already on its way is awaited instead of doubled). */
  beat(): Promise<void> {
    this.#beating ??= (async () => {
      try {
        const record = await this.#snapshot();
        this.#id = record.id;
        await this.#directory.beat(record);
        this.#failing = false;
      } catch (err) {
        if (!this.#failing) this.#onError(err);
        this.#failing = true;
      } finally {
        this.#beating = undefined;
      }
    })();
    return this.#beating;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#beating;
    if (this.#id !== undefined) await this.#directory.remove(this.#id).catch(() => undefined);
  }
}
