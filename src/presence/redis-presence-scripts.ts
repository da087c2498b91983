import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * The Lua scripts of RedisPresenceStore (src/presence/redis-presence.ts) and the key layout they
 * share. Every key starts with the store's prefix (a hash tag such as `{herald}:` keeps them in
 * one Redis Cluster slot, so one script may touch them all):
 *
 * - `<p>presence:nodes`        set of the node ids that hold entries
 * - `<p>presence:hb:<node>`    a node's heartbeat, with a PX expiry the node renews while it runs
 * - `<p>presence:nc:<node>`    set of the channels a node wrote entries to
 * - `<p>presence:ch:<channel>` hash: `<node>|<identity>` -> connections, `<node>` -> anonymous ones
 * - `<p>presence:seq`          counter: one number per announcement, in the order Redis ran them
 *
 * Announcements go out on the pub/sub channel `<p>presence` as `<seq> <json>`, published by the
 * script that made the change, so their order is the order of the writes and a gap in `seq`
 * shows a lost message.
 */
export interface PresenceKeys {
  nodes: string;
  seq: string;
  hbPrefix: string;
  ncPrefix: string;
  chPrefix: string;
  /** The pub/sub channel of announcements. */
  announce: string;
}

export function presenceKeys(prefix: string): PresenceKeys {
  return {
    nodes: `${prefix}presence:nodes`,
    seq: `${prefix}presence:seq`,
    hbPrefix: `${prefix}presence:hb:`,
    ncPrefix: `${prefix}presence:nc:`,
    chPrefix: `${prefix}presence:ch:`,
    announce: `${prefix}presence`,
  };
}

/** Deletes one node's fields from one channel hash: `<node>` and every `<node>|...`. */
const DROP_NODE_FIELDS = `
local function dropNode(h, node)
  local head = node .. '|'
  for _, f in ipairs(redis.call('HKEYS', h)) do
    if f == node or string.sub(f, 1, #head) == head then redis.call('HDEL', h, f) end
  end
end
local function removeNode(ncPrefix, chPrefix, node)
  for _, ch in ipairs(redis.call('SMEMBERS', ncPrefix .. node)) do dropNode(chPrefix .. ch, node) end
  redis.call('DEL', ncPrefix .. node)
end
`;

/** Writes the counts in ARGV[6..] as (channel, field, count) triples; 0 deletes the field. */
const WRITE_COUNTS = `
local function writeCounts(chPrefix, nc)
  for i = 6, #ARGV, 3 do
    local h = chPrefix .. ARGV[i]
    if tonumber(ARGV[i + 2]) > 0 then
      redis.call('HSET', h, ARGV[i + 1], ARGV[i + 2])
      redis.call('SADD', nc, ARGV[i])
    else
      redis.call('HDEL', h, ARGV[i + 1])
    end
  end
end
`;

/**
 * A node's changed counts. KEYS: hb, nc, seq. ARGV: ttl ms, node, chPrefix, announce, body,
 * triples. Returns -1 without writing when the heartbeat is gone (the node was reaped as dead:
 * it must write its whole state again, not a part of it), else the announcement's seq.
 */
export const DELTA_LUA = `${WRITE_COUNTS}
if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return -1 end
writeCounts(ARGV[3], KEYS[2])
local s = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[4], s .. ' ' .. ARGV[5])
return s
`;

/**
 * A node's whole state, replacing what Redis held for it (at start, after a reconnect, after
 * being reaped). KEYS: hb, nc, seq, nodes. ARGV as DELTA_LUA.
 */
export const FULL_LUA = `${DROP_NODE_FIELDS}${WRITE_COUNTS}
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('SADD', KEYS[4], ARGV[2])
local nc = KEYS[2]
for _, ch in ipairs(redis.call('SMEMBERS', nc)) do dropNode(ARGV[3] .. ch, ARGV[2]) end
redis.call('DEL', nc)
writeCounts(ARGV[3], nc)
local s = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[4], s .. ' ' .. ARGV[5])
return s
`;

/** Renews a node's heartbeat. KEYS: hb. ARGV: ttl ms. Returns 0 when it was gone (reaped). */
export const BEAT_LUA = `return redis.call('PEXPIRE', KEYS[1], ARGV[1])`;

/**
 * Removes every node whose heartbeat lapsed (all in one script, so two survivors never both
 * remove, and announce, the same node), and with ARGV[6] a node that leaves gracefully. Then,
 * with ARGV[7] = '1', reads the state of every node left. KEYS: nodes, seq. ARGV: hbPrefix,
 * ncPrefix, chPrefix, announce, the caller's node (never reaped here), the leaving node or '',
 * read flag. Returns { seq, { live node, ... }, { channel, { field, value, ... } }, ... }.
 */
export const SYNC_LUA = `${DROP_NODE_FIELDS}
local gone = {}
for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if n == ARGV[6] or (n ~= ARGV[5] and redis.call('EXISTS', ARGV[1] .. n) == 0) then
    removeNode(ARGV[2], ARGV[3], n)
    redis.call('DEL', ARGV[1] .. n)
    redis.call('SREM', KEYS[1], n)
    table.insert(gone, n)
  end
end
if #gone > 0 then
  local s = redis.call('INCR', KEYS[2])
  redis.call('PUBLISH', ARGV[4], s .. ' ' .. cjson.encode({ t = 'r', nodes = gone }))
end
if ARGV[7] ~= '1' then return {} end
local live = redis.call('SMEMBERS', KEYS[1])
local out = { tonumber(redis.call('GET', KEYS[2]) or '0'), live }
local seen = {}
for _, n in ipairs(live) do
  for _, ch in ipairs(redis.call('SMEMBERS', ARGV[2] .. n)) do
    if not seen[ch] then
      seen[ch] = true
      table.insert(out, { ch, redis.call('HGETALL', ARGV[3] .. ch) })
    end
  end
end
return out
`;

const shas = new Map<string, string>();

/**
 * Runs a script by its SHA1, loading it once per server (EVALSHA, then EVAL on NOSCRIPT). The
 * EVAL is skipped when `cancelled()` has turned true meanwhile: it would run after commands sent
 * since (a close's removal), undoing them.
 */
export async function runScript(
  redis: Redis,
  lua: string,
  keys: readonly string[],
  args: readonly (string | number)[],
  cancelled: () => boolean = () => false,
): Promise<unknown> {
  let sha = shas.get(lua);
  if (!sha) shas.set(lua, (sha = createHash('sha1').update(lua).digest('hex')));
  try {
    return await redis.evalsha(sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    if (cancelled()) throw new Error('presence store closed', { cause: err });
    return await redis.eval(lua, keys.length, ...keys, ...args);
  }
}
