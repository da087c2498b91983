/**
 * The Lua scripts of RedisDeliveryStore: every step the DeliveryStore specification calls atomic
 * runs as one script, and Redis runs one script at a time, so two nodes never hold one delivery or
 * one lease at once.
 *
 * Keys, all under the store's prefix P (a hash tag, so one Redis Cluster slot holds them all; each
 * script names `P .. 'ep'` as its key for routing and builds the others from P, its ARGV[1]):
 *
 *   P seq                 delivery id counter
 *   P d:<id>              hash: one delivery (Delivery's fields with its id, `bytes` = body length; a null
 *                         leaseOwner, lastStatus or lastError is an absent field)
 *   P a:<id>              list: its attempts, JSON, oldest first
 *   P all:<ep>            zset: every delivery id of an endpoint, scored by id
 *   P s:<status>:<ep>     zset: the endpoint's delivery ids with that status, scored by id (the
 *                         pending one gives an ordered endpoint its head)
 *   P due:<ep>            zset: the endpoint's pending deliveries scored by nextAt; members are ids
 *                         zero-padded to 16 digits, so equal times keep id order
 *   P done                zset: delivered and dead ids scored by createdAt (what prune deletes)
 *   P own:<owner>         set: pending ids whose lease `owner` holds; P owners: owners with any
 *   P ep                  hash: endpoint id -> EndpointRecord JSON
 *   P epv                 the endpoints version, raised by every change to endpoints
 *   P meta                hash: plannedThrough
 *   P lease:<name>        hash: a named lease's owner and until
 *
 * Nullable strings cross as '-' (null) or '+' followed by the value.
 */

const PRELUDE = `
local P = ARGV[1]
local function dkey(id) return P .. 'd:' .. id end
local function st(status, ep) return P .. 's:' .. status .. ':' .. ep end
local function due(ep) return P .. 'due:' .. ep end
local function pad(id) return string.format('%016d', tonumber(id)) end
local FINAL = { delivered = true, dead = true }

-- Keeps the indexes in step with a delivery's status (old is false for a new delivery).
local function move(id, ep, old, new, nextAt, createdAt)
  if old ~= new then
    if old then redis.call('ZREM', st(old, ep), id) end
    redis.call('ZADD', st(new, ep), id, id)
  end
  if old == 'pending' and new ~= 'pending' then redis.call('ZREM', due(ep), pad(id)) end
  if new == 'pending' then redis.call('ZADD', due(ep), nextAt, pad(id)) end
  if old and FINAL[old] and not FINAL[new] then redis.call('ZREM', P .. 'done', id) end
  if FINAL[new] and not (old and FINAL[old]) then redis.call('ZADD', P .. 'done', createdAt, id) end
end

-- Moves a pending delivery's lease from one owner to another (either may be false: none).
local function setOwner(id, old, new)
  if old == new then return end
  if old then
    redis.call('SREM', P .. 'own:' .. old, id)
    if redis.call('SCARD', P .. 'own:' .. old) == 0 then redis.call('SREM', P .. 'owners', old) end
  end
  if new then
    redis.call('SADD', P .. 'own:' .. new, id)
    redis.call('SADD', P .. 'owners', new)
  end
end

local function setNullable(k, field, v)
  if string.sub(v, 1, 1) == '+' then redis.call('HSET', k, field, string.sub(v, 2)) else redis.call('HDEL', k, field) end
end
`;

/** ARGV: P, id, doc. */
const PUT_ENDPOINT = `
redis.call('HSET', P .. 'ep', ARGV[2], ARGV[3])
redis.call('INCR', P .. 'epv')
`;

/** ARGV: P, id. Resolves to 1 when the endpoint existed. */
const DELETE_ENDPOINT = `
local ep = ARGV[2]
local existed = redis.call('HDEL', P .. 'ep', ep)
local all = P .. 'all:' .. ep
for _, id in ipairs(redis.call('ZRANGE', all, 0, -1)) do
  setOwner(id, redis.call('HGET', dkey(id), 'leaseOwner'), false)
  redis.call('DEL', dkey(id), P .. 'a:' .. id)
  redis.call('ZREM', P .. 'done', id)
end
redis.call('DEL', all, due(ep), st('pending', ep), st('held', ep), st('delivered', ep), st('dead', ep))
redis.call('INCR', P .. 'epv')
return existed
`;

/** Fields of one enqueued row in ARGV. */
export const ENQUEUE_FIELDS = 10;

/**
 * ARGV: P, plannedThrough ('' leaves it), then per row: endpointId, eventSeq, msgId, body, status,
 * nextAt, createdAt, bytes, lease owner ('' for none), lease until. Resolves to the new ids.
 */
const ENQUEUE = `
local ids = {}
for i = 3, #ARGV, ${ENQUEUE_FIELDS} do
  local ep, status, nextAt, createdAt, owner = ARGV[i], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 8]
  local id = redis.call('INCR', P .. 'seq')
  local claims = 0
  if status == 'pending' and owner ~= '' then
    nextAt = ARGV[i + 9]
    claims = 1
  else
    owner = false
  end
  redis.call('HSET', dkey(id), 'id', id, 'endpointId', ep, 'eventSeq', ARGV[i + 1], 'msgId', ARGV[i + 2], 'body', ARGV[i + 3],
    'bytes', ARGV[i + 7], 'status', status, 'attempts', 0, 'scheduleStart', 0, 'nextAt', nextAt, 'claims', claims,
    'createdAt', createdAt, 'updatedAt', createdAt)
  if owner then redis.call('HSET', dkey(id), 'leaseOwner', owner) end
  redis.call('ZADD', P .. 'all:' .. ep, id, id)
  move(id, ep, false, status, nextAt, createdAt)
  setOwner(id, false, owner)
  ids[#ids + 1] = id
end
if ARGV[2] ~= '' then redis.call('HSET', P .. 'meta', 'plannedThrough', ARGV[2]) end
return ids
`;

/**
 * ARGV: P, now, leaseMs, owner, max ('' unbounded), maxBytes ('' unbounded), then per request:
 * endpointId, limit, ordered ('1' or '0'). The walk of claimWithin (src/core/delivery-store.ts),
 * step for step. Resolves to { cut, has next due, next due, { HGETALL of each claimed } }.
 */
const CLAIM = `
local now, leaseMs, owner = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local max = ARGV[5] == '' and math.huge or tonumber(ARGV[5])
local maxBytes = ARGV[6] == '' and math.huge or tonumber(ARGV[6])
local claimed, bytes, nextDue, cut = {}, 0, false, 0
for i = 7, #ARGV, 3 do
  local ep = ARGV[i]
  local limit = math.min(tonumber(ARGV[i + 1]), max - #claimed)
  if limit <= 0 then cut = 1 break end
  local rows = {}
  if ARGV[i + 2] == '1' then
    local head = redis.call('ZRANGE', st('pending', ep), 0, 0)[1]
    if head and tonumber(redis.call('HGET', dkey(head), 'nextAt')) <= now then rows = { head } end
  else
    rows = redis.call('ZRANGEBYSCORE', due(ep), '-inf', now, 'LIMIT', 0, limit)
  end
  for _, m in ipairs(rows) do
    local id = tostring(tonumber(m))
    local k = dkey(id)
    local size = tonumber(redis.call('HGET', k, 'bytes'))
    if #claimed > 0 and bytes + size > maxBytes then cut = 1 break end
    bytes = bytes + size
    setOwner(id, redis.call('HGET', k, 'leaseOwner'), owner)
    redis.call('HSET', k, 'nextAt', now + leaseMs, 'leaseOwner', owner)
    redis.call('HINCRBY', k, 'claims', 1)
    redis.call('ZADD', due(ep), now + leaseMs, pad(id))
    claimed[#claimed + 1] = redis.call('HGETALL', k)
  end
  if cut == 1 then break end
  if #rows < limit then
    local first = redis.call('ZRANGE', due(ep), 0, 0, 'WITHSCORES')
    if first[2] then
      local at = tonumber(first[2])
      if not nextDue or at < nextDue then nextDue = at end
    end
  end
end
return { cut, nextDue and 1 or 0, nextDue or 0, claimed }
`;

/** Fields of one finished attempt in ARGV. */
export const FINISH_FIELDS = 8;

/**
 * ARGV: P, then per result: id, claim, attempt JSON, outcome status, nextAt, updatedAt,
 * lastStatus (nullable), lastError (nullable). The attempt is always recorded; the outcome only
 * where the fencing token still holds.
 */
const FINISH = `
for i = 2, #ARGV, ${FINISH_FIELDS} do
  local id = ARGV[i]
  local k = dkey(id)
  if redis.call('EXISTS', k) == 1 then
    redis.call('RPUSH', P .. 'a:' .. id, ARGV[i + 2])
    local cur = redis.call('HMGET', k, 'claims', 'status', 'endpointId', 'leaseOwner', 'createdAt')
    if tonumber(cur[1]) == tonumber(ARGV[i + 1]) then
      local new, nextAt = ARGV[i + 3], ARGV[i + 4]
      redis.call('HSET', k, 'status', new, 'nextAt', nextAt, 'updatedAt', ARGV[i + 5])
      redis.call('HINCRBY', k, 'attempts', 1)
      redis.call('HDEL', k, 'leaseOwner')
      setNullable(k, 'lastStatus', ARGV[i + 6])
      setNullable(k, 'lastError', ARGV[i + 7])
      setOwner(id, cur[4], false)
      move(id, cur[3], cur[2], new, nextAt, cur[5])
    end
  end
end
`;

/** ARGV: P, now, then (id, claim) pairs. */
const RELEASE = `
local now = ARGV[2]
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local k = dkey(id)
  local cur = redis.call('HMGET', k, 'claims', 'status', 'endpointId', 'leaseOwner')
  if cur[1] and tonumber(cur[1]) == tonumber(ARGV[i + 1]) and cur[2] == 'pending' then
    redis.call('HSET', k, 'nextAt', now, 'updatedAt', now)
    redis.call('HDEL', k, 'leaseOwner')
    redis.call('ZADD', due(cur[3]), now, pad(id))
    setOwner(id, cur[4], false)
  end
end
`;

/** ARGV: P, now, owners... Resolves to how many leases were given back. */
const RELEASE_OWNERS = `
local now, n = ARGV[2], 0
for i = 3, #ARGV do
  local owner = ARGV[i]
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'own:' .. owner)) do
    local k = dkey(id)
    local cur = redis.call('HMGET', k, 'status', 'endpointId', 'leaseOwner')
    if cur[1] == 'pending' and cur[3] == owner then
      redis.call('HSET', k, 'nextAt', now, 'updatedAt', now)
      redis.call('HDEL', k, 'leaseOwner')
      redis.call('ZADD', due(cur[2]), now, pad(id))
      n = n + 1
    end
  end
  redis.call('DEL', P .. 'own:' .. owner)
  redis.call('SREM', P .. 'owners', owner)
end
return n
`;

/** ARGV: P, name, owner, now, ttlMs. Resolves to 1 when `owner` holds the lease. */
const ACQUIRE_LEASE = `
local k = P .. 'lease:' .. ARGV[2]
local cur = redis.call('HMGET', k, 'owner', 'until')
if cur[1] and cur[1] ~= ARGV[3] and tonumber(cur[2]) > tonumber(ARGV[4]) then return 0 end
redis.call('HSET', k, 'owner', ARGV[3], 'until', tonumber(ARGV[4]) + tonumber(ARGV[5]))
return 1
`;

/** ARGV: P, name, owner. */
const RELEASE_LEASE = `
local k = P .. 'lease:' .. ARGV[2]
if redis.call('HGET', k, 'owner') == ARGV[3] then redis.call('DEL', k) end
`;

/** ARGV: P, endpointId, now. Resolves to how many deliveries moved to held. */
const HOLD = `
local ep, now = ARGV[2], ARGV[3]
local ids = redis.call('ZRANGE', st('pending', ep), 0, -1)
for _, id in ipairs(ids) do
  local k = dkey(id)
  setOwner(id, redis.call('HGET', k, 'leaseOwner'), false)
  redis.call('HSET', k, 'status', 'held', 'updatedAt', now)
  redis.call('HDEL', k, 'leaseOwner')
  redis.call('ZADD', st('held', ep), id, id)
end
redis.call('DEL', st('pending', ep), due(ep))
redis.call('INCR', P .. 'epv')
return #ids
`;

/** ARGV: P, endpointId, now. Resolves to how many deliveries moved back to pending. */
const UNHOLD = `
local ep, now = ARGV[2], ARGV[3]
local ids = redis.call('ZRANGE', st('held', ep), 0, -1)
for _, id in ipairs(ids) do
  redis.call('HSET', dkey(id), 'status', 'pending', 'nextAt', now, 'updatedAt', now)
  redis.call('ZADD', st('pending', ep), id, id)
  redis.call('ZADD', due(ep), now, pad(id))
end
redis.call('DEL', st('held', ep))
redis.call('INCR', P .. 'epv')
return #ids
`;

/** ARGV: P, id, now. Resolves to the delivery's HGETALL (empty when it does not exist). */
const RETRY = `
local id, now = ARGV[2], ARGV[3]
local k = dkey(id)
local cur = redis.call('HMGET', k, 'status', 'endpointId', 'leaseOwner', 'createdAt', 'attempts')
if not cur[1] then return {} end
if cur[1] ~= 'pending' or not cur[3] then
  redis.call('HSET', k, 'status', 'pending', 'nextAt', now, 'scheduleStart', cur[5], 'updatedAt', now)
  move(id, cur[2], cur[1], 'pending', now, cur[4])
end
return redis.call('HGETALL', k)
`;

/** ARGV: P, before, chunk. Deletes up to `chunk` finished deliveries created before `before`. */
const PRUNE = `
local ids = redis.call('ZRANGEBYSCORE', P .. 'done', '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local cur = redis.call('HMGET', dkey(id), 'endpointId', 'status')
  if cur[1] then
    redis.call('ZREM', P .. 'all:' .. cur[1], id)
    redis.call('ZREM', st(cur[2], cur[1]), id)
  end
  redis.call('DEL', dkey(id), P .. 'a:' .. id)
  redis.call('ZREM', P .. 'done', id)
end
return #ids
`;

/** Script name (an ioredis command, prefixed so it meets no other) to its Lua source. */
export const DELIVERY_SCRIPTS = {
  heraldDeliveryPutEndpoint: PUT_ENDPOINT,
  heraldDeliveryDeleteEndpoint: DELETE_ENDPOINT,
  heraldDeliveryEnqueue: ENQUEUE,
  heraldDeliveryClaim: CLAIM,
  heraldDeliveryFinish: FINISH,
  heraldDeliveryRelease: RELEASE,
  heraldDeliveryReleaseOwners: RELEASE_OWNERS,
  heraldDeliveryAcquireLease: ACQUIRE_LEASE,
  heraldDeliveryReleaseLease: RELEASE_LEASE,
  heraldDeliveryHold: HOLD,
  heraldDeliveryUnhold: UNHOLD,
  heraldDeliveryRetry: RETRY,
  heraldDeliveryPrune: PRUNE,
} as const;

export type DeliveryScript = keyof typeof DELIVERY_SCRIPTS;

/** The Lua source of a script: the shared helpers, then its body. */
export function scriptSource(name: DeliveryScript): string {
  return PRELUDE + DELIVERY_SCRIPTS[name];
}
