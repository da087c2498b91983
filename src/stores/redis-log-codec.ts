import { makeStoredEvent, type StoredEvent } from '../core/event.js';

/**
 * The shape of the Redis log, shared by the store that writes it (redis-event-store.ts) and the
 * broker that follows it (brokers/redis-broker.ts): key names and the stream entry codec.
 *
 * Every key starts with the deployment's prefix. A prefix with a hash tag (`{herald}:`) puts
 * every key of one log in one Redis Cluster slot, which the scripts need: they touch many keys
 * of the log in one atomic call.
 *
 * The log is a Redis Stream whose entry ids are `<seq>-0`, so a position is an entry id and a
 * read from a position is one XRANGE. An entry holds the fields `c` (channel), `t` (type),
 * `d` (data, JSON text), `at` (milliseconds since the epoch) and, when the event was appended
 * with one, `k` (its idempotency key, so pruning the entry can delete the key with it).
 */
export interface RedisLogKeys {
  /** The stream of events. */
  readonly log: string;
  /** The newest seq ever assigned (a counter; positions are never reused). */
  readonly seq: string;
  /** Hash: `epoch` (the log's identity) and `pruned` (the prune watermark). */
  readonly meta: string;
}

export function redisLogKeys(prefix: string): RedisLogKeys {
  return { log: `${prefix}log`, seq: `${prefix}seq`, meta: `${prefix}meta` };
}

/** The stream entry id of the event at `seq`. */
export function entryIdOf(seq: number): string {
  return `${seq}-0`;
}

/** The seq of a stream entry id (`<seq>-0`). */
export function seqOfEntryId(id: string): number {
  const dash = id.indexOf('-');
  return Number(dash < 0 ? id : id.slice(0, dash));
}

/** A stream entry as ioredis returns it from XRANGE and XREAD: its id and its field list. */
export type RedisLogEntry = [id: string, fields: string[]];

/** The event of one stream entry, with ids of the log `epoch`. */
export function decodeLogEntry(entry: RedisLogEntry, epoch: string): StoredEvent {
  const [id, f] = entry;
  let channel = '';
  let type = '';
  let data = '';
  let time = 0;
  for (let i = 0; i + 1 < f.length; i += 2) {
    const v = f[i + 1]!;
    switch (f[i]) {
      case 'c':
        channel = v;
        break;
      case 't':
        type = v;
        break;
      case 'd':
        data = v;
        break;
      case 'at':
        time = Number(v);
        break;
    }
  }
  return makeStoredEvent(seqOfEntryId(id), channel, type, data, time, epoch);
}
