/**
 * The Lua scripts of the Redis log (redis-event-store.ts). A script runs atomically: no other
 * command runs between its first and last line, which is what makes an event, its idempotency
 * key, its receipt and its stream position commit together.
 *
 * Redis does not roll a script back when a command in it fails. So the append script first
 * decides everything (reads only), then writes; the only writes that could be refused are the
 * XADDs, done first, and their ids were checked to lie above the stream's own.
 *
 * Every key a script touches starts with the prefix (ARGV[1]); KEYS[1] is the log stream, so a
 * Redis Cluster client routes the call to the slot of the prefix's hash tag.
 *
 * Values kept per key (numbers in decimal, `:` between):
 * - `<prefix>idem:<key>`: `seq:at:keepUntil`, with a PX backstop TTL; `<prefix>idem-at` (zset,
 *   score `at`) and `<prefix>idem-until` (zset, score `keepUntil`, keys held by their own TTL
 *   after their event or the store TTL let go) are what prune walks.
 * - `<prefix>digest:<source>:<sha256 hex>`: `seq:at:keepUntil`; `<prefix>digest-until` (zset).
 * - `<prefix>origins` (hash): stream name -> `offset:seq:at`.
 * - receipts: `<prefix>receipt-id` (counter), per source `<prefix>receipts:<source>` (hash id ->
 *   `status\nseq\nbody-base64\njson`), `<prefix>receipt-ids:<source>`,
 *   `<prefix>receipt-status:<source>:<status>` (zsets of ids), `<prefix>receipt-until:<source>`
 *   (zset, score keepUntil), and `<prefix>receipt-sources` (set).
 */

/** Arguments per input of the append script (see APPEND_SCRIPT). */
export const APPEND_ARGS_PER_INPUT = 14;
/** Arguments before the inputs of the append script. */
export const APPEND_HEAD_ARGS = 7;
/** Arguments per receipt of the record script. */
export const RECORD_ARGS_PER_RECEIPT = 5;

/**
 * The log's identity and counter, checked on every call that may hand out a position.
 * ARGV: prefix, expected epoch ('' when unknown), a fresh candidate epoch, the highest seq the
 * caller saw in the expected epoch. A log whose meta is gone (FLUSHALL, a restart without
 * persistence) gets the candidate; so does one whose counter went below what the caller saw or
 * below the stream's last id (a replica promoted without the latest writes), but only while its
 * epoch is still the one the caller saw: another caller may have replaced it already.
 */
const LOG_STATE = `
local function fmt(n) return string.format('%d', n) end
local function split3(v)
  local a, b, c = string.match(v, '^([^:]*):([^:]*):([^:]*)$')
  return tonumber(a), tonumber(b), tonumber(c)
end
local function log_state(p, log, expected, candidate, seen)
  local m = redis.call('HMGET', p .. 'meta', 'epoch', 'pruned')
  local epoch = m[1]
  local pruned = tonumber(m[2] or '0')
  local counter = tonumber(redis.call('GET', p .. 'seq') or '0')
  -- The stream refuses ids at or below the last it generated (kept even when the entries went).
  local floor = pruned
  if redis.call('EXISTS', log) == 1 then
    local info = redis.call('XINFO', 'STREAM', log)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        local s = tonumber(string.match(info[i + 1], '^(%d+)'))
        if s > floor then floor = s end
      end
    end
  end
  if not epoch then
    redis.call('HSETNX', p .. 'meta', 'epoch', candidate)
    epoch = candidate
  elseif counter < floor or (epoch == expected and counter < seen) then
    epoch = candidate
    redis.call('HSET', p .. 'meta', 'epoch', epoch)
  end
  if counter < floor then
    counter = floor
    redis.call('SET', p .. 'seq', fmt(counter))
  end
  return epoch, counter, pruned
end
`;

/** Head: returns {epoch, lastSeq, prunedThrough}. ARGV as LOG_STATE. */
export const HEAD_SCRIPT = `${LOG_STATE}
local epoch, counter, pruned = log_state(ARGV[1], KEYS[1], ARGV[2], ARGV[3], tonumber(ARGV[4]))
return {epoch, counter, pruned}
`;

/** Writes one receipt; returns its id. `status` decides whether the body is kept. */
const WRITE_RECEIPT = `
local function write_receipt(p, source, status, seq, keep_until, body, json)
  local id = redis.call('INCR', p .. 'receipt-id')
  if status ~= 'accepted' then body = '' end
  redis.call('HSET', p .. 'receipts:' .. source, id, status .. '\\n' .. seq .. '\\n' .. body .. '\\n' .. json)
  redis.call('ZADD', p .. 'receipt-ids:' .. source, id, id)
  redis.call('ZADD', p .. 'receipt-status:' .. source .. ':' .. status, id, id)
  redis.call('ZADD', p .. 'receipt-until:' .. source, keep_until, id)
  redis.call('SADD', p .. 'receipt-sources', source)
  return id
end
`;

/**
 * Append: ARGV = prefix, now, expected epoch, candidate epoch, seen seq, key TTL backstop (ms),
 * input count, then APPEND_ARGS_PER_INPUT per input: flags (`k` key, `o` origin, `r` receipt),
 * channel, type, data, idempotency key, own key TTL (ms), origin stream, origin offset, receipt
 * source, receipt status, receipt digest ('' none), receipt keepUntil, receipt body (base64),
 * receipt JSON. Returns {epoch, rows}; a row is {duplicate 0/1, seq, time, ref, channel, type,
 * data, receiptId}: `ref` >= 0 means "the fields of input ref" (1-based), else the fields follow.
 */
export const APPEND_SCRIPT = `${LOG_STATE}${WRITE_RECEIPT}
local log = KEYS[1]
local p = ARGV[1]
local now = tonumber(ARGV[2])
local epoch, counter = log_state(p, log, ARGV[3], ARGV[4], tonumber(ARGV[5]))
local key_ttl = tonumber(ARGV[6])
local n = tonumber(ARGV[7])
local W = ${APPEND_ARGS_PER_INPUT}
local B = ${APPEND_HEAD_ARGS}

local keys, digests, origins = {}, {}, {}
local planned = {}
local rows = {}
local next_seq = counter

-- The event at seq, as a row tail: planned in this batch, still in the log, or gone (0 = use own input).
local function event_at(seq, at, own)
  if planned[seq] then return {planned[seq], '', '', '', at} end
  local e = redis.call('XRANGE', log, fmt(seq) .. '-0', fmt(seq) .. '-0')
  if e[1] then
    local f, c, t, d, tm = e[1][2], '', '', '', at
    for j = 1, #f, 2 do
      local name = f[j]
      if name == 'c' then c = f[j + 1] elseif name == 't' then t = f[j + 1]
      elseif name == 'd' then d = f[j + 1] elseif name == 'at' then tm = tonumber(f[j + 1]) end
    end
    return {-1, c, t, d, tm}
  end
  return {own, '', '', '', at}
end

-- Phase 1: decide, reading only.
local decisions = {}
for i = 1, n do
  local b = B + (i - 1) * W
  local flags = ARGV[b + 1]
  local key = ARGV[b + 5]
  local has_key = string.find(flags, 'k', 1, true)
  local has_origin = string.find(flags, 'o', 1, true)
  local has_receipt = string.find(flags, 'r', 1, true)
  local d = nil
  if has_origin then
    local stream, offset = ARGV[b + 7], tonumber(ARGV[b + 8])
    local mark = origins[stream]
    if not mark then
      local v = redis.call('HGET', p .. 'origins', stream)
      if v then
        local o, s, at = split3(v)
        mark = {o, s, at}
      end
    end
    if mark and offset <= mark[1] then d = {seq = mark[2], at = mark[3], receipt = false} end
  end
  if not d and has_key then
    local k = keys[key]
    if not k then
      local v = redis.call('GET', p .. 'idem:' .. key)
      if v then
        local s, at, u = split3(v)
        k = {s, at}
      end
    end
    if k then d = {seq = k[1], at = k[2], receipt = true} end
  end
  local dkey = nil
  if has_receipt and ARGV[b + 11] ~= '' then dkey = ARGV[b + 9] .. ':' .. ARGV[b + 11] end
  if not d and dkey then
    local g = digests[dkey]
    if not g then
      local v = redis.call('GET', p .. 'digest:' .. dkey)
      if v then
        local s, at, u = split3(v)
        if u >= now then g = {s, at} end
      end
    end
    if g then d = {seq = g[1], at = g[2], receipt = true} end
  end
  if d then
    d.dup = true
  else
    next_seq = next_seq + 1
    d = {dup = false, seq = next_seq, at = now, receipt = has_receipt}
    planned[next_seq] = i
    if has_key then keys[key] = {next_seq, now} end
    if has_origin then origins[ARGV[b + 7]] = {tonumber(ARGV[b + 8]), next_seq, now} end
    if dkey and ARGV[b + 10] == 'accepted' and tonumber(ARGV[b + 12]) >= now then digests[dkey] = {next_seq, now} end
  end
  decisions[i] = d
end

-- Phase 2: write. The XADDs first: their ids lie above the stream's (log_state), and nothing
-- else was written yet should one still be refused.
for i = 1, n do
  local d = decisions[i]
  if not d.dup then
    local b = B + (i - 1) * W
    local id = fmt(d.seq) .. '-0'
    if string.find(ARGV[b + 1], 'k', 1, true) then
      redis.call('XADD', log, id, 'c', ARGV[b + 2], 't', ARGV[b + 3], 'd', ARGV[b + 4], 'at', ARGV[2], 'k', ARGV[b + 5])
    else
      redis.call('XADD', log, id, 'c', ARGV[b + 2], 't', ARGV[b + 3], 'd', ARGV[b + 4], 'at', ARGV[2])
    end
  end
end
if next_seq > counter then redis.call('SET', p .. 'seq', fmt(next_seq)) end
for i = 1, n do
  local d = decisions[i]
  local b = B + (i - 1) * W
  local flags = ARGV[b + 1]
  local receipt_id = 0
  if not d.dup then
    if string.find(flags, 'k', 1, true) then
      local own = tonumber(ARGV[b + 6])
      local ttl = key_ttl
      if own > ttl then ttl = own end
      local key = ARGV[b + 5]
      redis.call('SET', p .. 'idem:' .. key, fmt(d.seq) .. ':' .. ARGV[2] .. ':' .. fmt(now + own), 'PX', fmt(ttl + 1))
      redis.call('ZADD', p .. 'idem-at', ARGV[2], key)
    end
    if string.find(flags, 'o', 1, true) then
      redis.call('HSET', p .. 'origins', ARGV[b + 7], ARGV[b + 8] .. ':' .. fmt(d.seq) .. ':' .. ARGV[2])
    end
    if d.receipt then
      local keep_until = tonumber(ARGV[b + 12])
      receipt_id = write_receipt(p, ARGV[b + 9], ARGV[b + 10], fmt(d.seq), ARGV[b + 12], ARGV[b + 13], ARGV[b + 14])
      if ARGV[b + 11] ~= '' and ARGV[b + 10] == 'accepted' and keep_until >= now then
        local dkey = ARGV[b + 9] .. ':' .. ARGV[b + 11]
        redis.call('SET', p .. 'digest:' .. dkey, fmt(d.seq) .. ':' .. ARGV[2] .. ':' .. ARGV[b + 12], 'PX', fmt(keep_until - now + 1))
        redis.call('ZADD', p .. 'digest-until', ARGV[b + 12], dkey)
      end
    end
    rows[i] = {0, d.seq, now, i, '', '', '', receipt_id}
  else
    if d.receipt and string.find(flags, 'r', 1, true) then
      receipt_id = write_receipt(p, ARGV[b + 9], 'duplicate', fmt(d.seq), ARGV[b + 12], '', ARGV[b + 14])
    end
    local e = event_at(d.seq, d.at, i)
    rows[i] = {1, d.seq, e[5], e[1], e[2], e[3], e[4], receipt_id}
  end
end
return {epoch, rows}
`;

/**
 * Records receipts that append no event. ARGV = prefix, count, then per receipt: source,
 * status, keepUntil, body (base64, kept only when accepted), JSON. Returns the ids.
 */
export const RECORD_SCRIPT = `${WRITE_RECEIPT}
local p = ARGV[1]
local n = tonumber(ARGV[2])
local ids = {}
for i = 1, n do
  local b = 2 + (i - 1) * ${RECORD_ARGS_PER_RECEIPT}
  ids[i] = write_receipt(p, ARGV[b + 1], ARGV[b + 2], '', ARGV[b + 3], ARGV[b + 4], ARGV[b + 5])
end
return ids
`;

/**
 * One bounded step of retention. ARGV = prefix, now, maxAgeMs, maxEvents, idempotencyTtlMs,
 * maxReceiptsPerSource, chunk. Deletes at most `chunk` of each: the oldest events past the
 * policy (raising the watermark first), then idempotency keys, digests and receipts whose time
 * is up. Returns {events deleted, 1 when a chunk was full and another step is due}.
 */
export const PRUNE_STEP_SCRIPT = `${LOG_STATE}
local log = KEYS[1]
local p = ARGV[1]
local now = tonumber(ARGV[2])
local max_age = tonumber(ARGV[3])
local max_events = tonumber(ARGV[4])
local key_cutoff = now - tonumber(ARGV[5])
local cap = tonumber(ARGV[6])
local chunk = tonumber(ARGV[7])
local more = 0

local function drop_key(k)
  redis.call('ZREM', p .. 'idem-at', k)
  redis.call('ZREM', p .. 'idem-until', k)
end
-- A key goes when its own TTL is over and its event left the log or the store TTL passed.
local function consider(k, pruned)
  local v = redis.call('GET', p .. 'idem:' .. k)
  if not v then drop_key(k) return end
  local seq, at, keep_until = split3(v)
  if not (at < key_cutoff or seq <= pruned) then
    redis.call('ZREM', p .. 'idem-until', k)
    return
  end
  if keep_until >= now then
    redis.call('ZREM', p .. 'idem-at', k)
    redis.call('ZADD', p .. 'idem-until', keep_until, k)
    return
  end
  redis.call('DEL', p .. 'idem:' .. k)
  drop_key(k)
end

-- Events: a prefix of the stream, by count and by age.
local pruned = tonumber(redis.call('HGET', p .. 'meta', 'pruned') or '0')
local over = 0
if max_events > 0 then
  local len = redis.call('XLEN', log)
  if len > max_events then over = len - max_events end
end
local deleted, last = 0, nil
local gone_keys = {}
if over > 0 or max_age > 0 then
  local entries = redis.call('XRANGE', log, '-', '+', 'COUNT', chunk)
  for i, e in ipairs(entries) do
    local f, at, key = e[2], 0, nil
    for j = 1, #f, 2 do
      if f[j] == 'at' then at = tonumber(f[j + 1]) elseif f[j] == 'k' then key = f[j + 1] end
    end
    if not (i <= over or (max_age > 0 and at < now - max_age)) then break end
    last = tonumber(string.match(e[1], '^(%d+)'))
    deleted = deleted + 1
    if key then gone_keys[#gone_keys + 1] = key end
  end
end
if last then
  if last > pruned then
    pruned = last
    redis.call('HSET', p .. 'meta', 'pruned', fmt(pruned))
  end
  redis.call('XTRIM', log, 'MINID', fmt(last + 1))
  for _, k in ipairs(gone_keys) do consider(k, pruned) end
  if deleted == chunk then more = 1 end
end

-- Idempotency keys past the store TTL, then those held by their own TTL.
local aged = redis.call('ZRANGEBYSCORE', p .. 'idem-at', '-inf', '(' .. fmt(key_cutoff), 'LIMIT', 0, chunk)
for _, k in ipairs(aged) do consider(k, pruned) end
if #aged == chunk then more = 1 end
local held = redis.call('ZRANGEBYSCORE', p .. 'idem-until', '-inf', '(' .. fmt(now), 'LIMIT', 0, chunk)
for _, k in ipairs(held) do consider(k, pruned) end
if #held == chunk then more = 1 end

-- Digests past their keepUntil (a later accepted arrival may have renewed one: kept).
local digests = redis.call('ZRANGEBYSCORE', p .. 'digest-until', '-inf', '(' .. fmt(now), 'LIMIT', 0, chunk)
for _, dk in ipairs(digests) do
  local v = redis.call('GET', p .. 'digest:' .. dk)
  local renewed = nil
  if v then
    local s, at, u = split3(v)
    if u >= now then renewed = u end
  end
  if renewed then
    redis.call('ZADD', p .. 'digest-until', renewed, dk)
  else
    redis.call('DEL', p .. 'digest:' .. dk)
    redis.call('ZREM', p .. 'digest-until', dk)
  end
end
if #digests == chunk then more = 1 end

-- Receipts: past keepUntil, then beyond the per-source cap (never their keys or digests).
local function drop_receipt(source, id)
  redis.call('HDEL', p .. 'receipts:' .. source, id)
  redis.call('ZREM', p .. 'receipt-ids:' .. source, id)
  redis.call('ZREM', p .. 'receipt-until:' .. source, id)
  for _, s in ipairs({'accepted', 'duplicate', 'replayed', 'rejected'}) do
    redis.call('ZREM', p .. 'receipt-status:' .. source .. ':' .. s, id)
  end
end
for _, source in ipairs(redis.call('SMEMBERS', p .. 'receipt-sources')) do
  local expired = redis.call('ZRANGEBYSCORE', p .. 'receipt-until:' .. source, '-inf', '(' .. fmt(now), 'LIMIT', 0, chunk)
  for _, id in ipairs(expired) do drop_receipt(source, id) end
  if #expired == chunk then more = 1 end
  local count = redis.call('ZCARD', p .. 'receipt-ids:' .. source)
  if cap > 0 and count > cap then
    local excess = count - cap
    if excess > chunk then excess = chunk; more = 1 end
    for _, id in ipairs(redis.call('ZRANGE', p .. 'receipt-ids:' .. source, 0, excess - 1)) do drop_receipt(source, id) end
    count = count - excess
  end
  if count == 0 then redis.call('SREM', p .. 'receipt-sources', source) end
end
return {deleted, more}
`;

/**
 * Gives the log a new epoch, but only while its epoch is still the one the caller followed
 * (another node may have replaced it already). KEYS[1] = the meta hash; ARGV = expected epoch,
 * candidate epoch. Returns the epoch now. For a follower that finds the stream no longer holds
 * what it handed over (a replica promoted without the latest writes).
 */
export const REPLACE_EPOCH_SCRIPT = `
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then redis.call('HSET', KEYS[1], 'epoch', ARGV[2]) end
return redis.call('HGET', KEYS[1], 'epoch')
`;
