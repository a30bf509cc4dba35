/**
 * The Lua scripts of the Redis delivery store. Every change to a user's
 * messages is one script over that user's keys only (`{u:NAME}` tags put
 * them in one hash slot), so it is atomic on one Redis and allowed on Redis
 * Cluster; the index shards have a script of their own.
 *
 * A user's keys:
 * - `<prefix>{u:NAME}:s`, a hash: `last` (the last seq given), `acked`,
 *   `ann` (1 once announced to an acknowledging session), `cin` (bytes of
 *   data ever kept), `at` (the newest storedAt, so storedAt never goes back).
 * - `<prefix>{u:NAME}:m`, a List: one element per kept message, oldest
 *   first, `<seq> <storedAt> <cin before it> <type bytes> <type><flag><data>`
 *   (flag `=` then the data, or `-` for none). Seqs and storedAt only grow
 *   along the list, and what is removed is always its head (acks and drops
 *   are cumulative), so a message is found by a binary search on LINDEX,
 *   depth is LLEN and bytes are `cin` minus the head's `cin before`: no
 *   per-user counter that could drift from what is stored. Redis deletes a
 *   list left empty; seqs go on from `last`.
 * - `<prefix>{u:NAME}:n`, the sharded pub/sub channel an append may publish on.
 * - `<prefix>{u:NAME}:p`, in a cluster: the user's presence, a hash of node ->
 *   "epoch plain ack" (sessions there that do not / do acknowledge), kept by
 *   src/cluster/ and read by ROUTE.
 *
 * Why a List and not a Stream or a sorted set: docs/DELIVERY-STORE.md.
 *
 * Numbers cross into Lua as decimal strings and are written back with
 * `%.0f`: Lua 5.1's own tostring switches to exponent form past 14 digits.
 * @module
 */
import { script } from "../redis/script.ts";

/** Helpers every user script starts with. */
const PRELUDE = `
local function num(x) return tonumber(x) or 0 end
local function str(x) return string.format('%.0f', x) end
-- seq, storedAt and cin-before of a stored message
local function head(r)
  local seq, at, c = string.match(r, '^(%d+) (%d+) (%d+) ')
  return tonumber(seq), tonumber(at), tonumber(c)
end
-- how many messages at the head of the list (n long) fail over(seq, storedAt); once it holds, it holds for the rest
local function countBefore(m, n, over)
  if n == 0 or over(head(redis.call('LINDEX', m, 0))) then return 0 end
  local lo, hi = 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if over(head(redis.call('LINDEX', m, mid))) then hi = mid else lo = mid + 1 end
  end
  return lo
end
-- removes the first k of the list
local function drop(m, k)
  if k > 0 then redis.call('LTRIM', m, k, -1) end
  return k
end
-- removes the messages stored before cut; returns how many, how many are left, and the first left (false when none)
local function trimAge(m, cut)
  local n = redis.call('LLEN', m)
  if n == 0 then return 0, 0, false end
  local first = redis.call('LINDEX', m, 0)
  local _, at0 = head(first)
  if at0 >= cut then return 0, n, first end
  local k = drop(m, countBefore(m, n, function(_, at) return at >= cut end))
  return k, n - k, n > k and redis.call('LINDEX', m, 0)
end
-- removes the messages up to seq; returns how many
local function trimTo(m, seq)
  local n = redis.call('LLEN', m)
  return drop(m, countBefore(m, n, function(s) return s > seq end))
end
-- depth, bytes and oldest storedAt of a list n long whose first message is first
local function summaryOf(n, first, cin)
  if n == 0 then return 0, 0, 0 end
  local _, at, c = head(first)
  return n, cin - c, at
end
-- the same for the list m (0, 0, 0 when empty)
local function summary(m, cin)
  local n = redis.call('LLEN', m)
  return summaryOf(n, n > 0 and redis.call('LINDEX', m, 0), cin)
end
`;

/**
 * Enters messages into users' streams (the body of APPEND and ROUTE). A
 * user's inbox is read once per script call (open), changed in memory by
 * each of its messages (store), and written back once at the end (flush):
 * a call that carries several messages for one user pays the reads and
 * writes once, not once per message.
 * store returns {expired, depth, oldest, 1, seq} | {.., 2, depth} (too many)
 * | {.., 3, bytes, size} (too big); what expired is reported by the user's
 * first answer of the call.
 */
const STORE_FN = `
local boxes, opened = {}, {}
local function open(s, m, cut)
  local b = boxes[s]
  if b then return b end
  local expired, n, first = trimAge(m, cut)
  local st = redis.call('HMGET', s, 'last', 'cin', 'at')
  local last, cin, at = num(st[1]), num(st[2]), num(st[3])
  if last == 0 and n > 0 then
    -- the hash is new but the messages are not (the hash was lost): seqs must still grow
    last = head(redis.call('LINDEX', m, -1))
  end
  b = {s = s, m = m, last = last, cin = cin, at = at, expired = expired, push = {}, ttl = 0}
  b.depth, b.bytes, b.oldest = summaryOf(n, first, cin)
  boxes[s] = b
  opened[#opened + 1] = b
  return b
end
local function store(s, m, now, cut, maxMessages, maxBytes, ttl, keep, hasData, typ, body)
  local b = open(s, m, tonumber(cut))
  local expired = b.expired
  b.expired = 0
  if keep == '1' then
    local size = 0
    if hasData == '1' then size = #body end
    if b.depth + 1 > tonumber(maxMessages) then return {expired, b.depth, b.oldest, 2, b.depth} end
    if b.bytes + size > tonumber(maxBytes) then return {expired, b.depth, b.oldest, 3, b.bytes, size} end
    b.last = b.last + 1
    b.at = math.max(tonumber(now), b.at)
    local data = '-'
    if hasData == '1' then data = '=' .. body end
    b.push[#b.push + 1] = str(b.last) .. ' ' .. str(b.at) .. ' ' .. str(b.cin) .. ' ' .. #typ .. ' ' .. typ .. data
    b.ttl = ttl
    if b.depth == 0 then b.oldest = b.at end
    b.depth = b.depth + 1
    b.bytes = b.bytes + size
    b.cin = b.cin + size
  else
    b.last = b.last + 1
  end
  return {expired, b.depth, b.oldest, 1, b.last}
end
local function flush()
  for _, b in ipairs(opened) do
    if #b.push > 0 then
      redis.call('RPUSH', b.m, unpack(b.push))
      redis.call('PEXPIRE', b.m, b.ttl)
      redis.call('HSET', b.s, 'last', str(b.last), 'cin', str(b.cin), 'at', str(b.at))
    else
      redis.call('HSET', b.s, 'last', str(b.last))
    end
  end
end
`;

/** The call's limits, ARGV[k]: "now cut maxMessages maxBytes ttlMs", the same for all its deliveries. */
const LIMITS_FN = `
local function limitsAt(k)
  local now, cut, maxMessages, maxBytes, ttl = string.match(ARGV[k], '^(%d+) (%-?%d+) (%d+) (%d+) (%d+)$')
  return now, cut, maxMessages, maxBytes, ttl
end
`;

/**
 * The appends of one job whose users' keys sit in one slot, each stored in
 * turn. KEYS: per delivery s, m. ARGV[1]: the limits (LIMITS_FN); then per
 * delivery its flags "<keep><hasData>" (each 0 or 1; few arguments, as each
 * costs the client time to encode), type, data.
 * Returns per delivery {expired, depth, oldest, 1, seq} | {.., 2, depth}
 * (too many) | {.., 3, bytes, size} (too big).
 */
const APPEND = `${PRELUDE}${STORE_FN}${LIMITS_FN}
local now, cut, maxMessages, maxBytes, ttl = limitsAt(1)
local out = {}
for d = 0, #KEYS / 2 - 1 do
  local a = 3 * d + 2
  local f = ARGV[a]
  out[d + 1] = store(KEYS[2 * d + 1], KEYS[2 * d + 2], now, cut, maxMessages, maxBytes, ttl, string.sub(f, 1, 1), string.sub(f, 2, 2), ARGV[a + 1], ARGV[a + 2])
end
flush()
return out
`;

/**
 * A cluster's deliveries of one event-loop turn (docs/CLUSTER.md), each
 * stored then notified in one step, so a login racing it cannot lose the
 * message: the login's presence is either seen here (its node is notified)
 * or not yet written (the message is stored, and the login's replay, which
 * comes after its presence, reads it). One call carries every delivery of
 * the turn whose user's keys sit in one slot.
 * KEYS: per delivery s, m, p (presence: node -> "epoch plain ack"), n (the
 * user's channel). ARGV[1]: the calling node; ARGV[2]: the limits
 * (LIMITS_FN); then per delivery its flags "<hasData><mustExist><plainHere>
 * <ackHere>" (each 0 or 1), type, data, the notification's head (the data
 * follows it).
 * Per delivery: stored when the user has no session anywhere or an
 * acknowledging one somewhere; kept (not only given a seq) unless a session
 * that does not acknowledge takes it now; published when another node holds
 * a session, one message per user and call (its deliveries in order, each
 * "<seq> <head><data>").
 * Returns per delivery {expired, depth, oldest, 1, seq (0: not stored),
 * other nodes, kept} | {.., 2, depth} | {.., 3, bytes, size} | {0, 0, 0, 4}
 * (no session, and mustExist and the user was never seen: nothing done).
 */
const ROUTE = `${PRELUDE}${STORE_FN}${LIMITS_FN}
local origin = ARGV[1]
local now, cut, maxMessages, maxBytes, ttl = limitsAt(2)
local out, seen, order, texts = {}, {}, {}, {}
for d = 0, #KEYS / 4 - 1 do
  local s, m, p, n = KEYS[4 * d + 1], KEYS[4 * d + 2], KEYS[4 * d + 3], KEYS[4 * d + 4]
  local a = 4 * d + 3
  local f = ARGV[a]
  local hasData, mustExist, plainHere, ackHere = string.sub(f, 1, 1), string.sub(f, 2, 2), string.sub(f, 3, 3), string.sub(f, 4, 4)
  local who = seen[p]
  if not who then
    who = {others = 0, plain = false, ack = false}
    local pres = redis.call('HGETALL', p)
    for i = 1, #pres, 2 do
      if pres[i] ~= origin then
        local _, pl, ak = string.match(pres[i + 1], '^(%S+) (%d+) (%d+)$')
        pl, ak = tonumber(pl) or 0, tonumber(ak) or 0
        if pl + ak > 0 then who.others = who.others + 1 end
        if pl > 0 then who.plain = true end
        if ak > 0 then who.ack = true end
      end
    end
    seen[p] = who
  end
  local nobody = who.others == 0 and plainHere == '0' and ackHere == '0'
  if nobody and mustExist == '1' and redis.call('EXISTS', s) == 0 then
    out[d + 1] = {0, 0, 0, 4}
  else
    local keep = '1'
    if plainHere == '1' or who.plain then keep = '0' end
    local r = {0, 0, 0, 1, 0}
    if nobody or who.ack or ackHere == '1' then
      r = store(s, m, now, cut, maxMessages, maxBytes, ttl, keep, hasData, ARGV[a + 1], ARGV[a + 2])
    end
    if r[4] ~= 1 then
      out[d + 1] = r
    else
      if who.others > 0 then
        if not texts[n] then texts[n] = {}; order[#order + 1] = n end
        local t = texts[n]
        t[#t + 1] = str(r[5]) .. ' ' .. ARGV[a + 3] .. ARGV[a + 2]
      end
      out[d + 1] = {r[1], r[2], r[3], 1, r[5], who.others, tonumber(keep)}
    end
  end
end
flush()
for _, n in ipairs(order) do redis.call('SPUBLISH', n, table.concat(texts[n])) end
return out
`;

/**
 * KEYS: s, m. ARGV: after, limit, cut.
 * Returns {expired, depth, oldest, {{seq, storedAt, type, data or nil}, ...}}.
 */
const READ = `${PRELUDE}
local s, m = KEYS[1], KEYS[2]
local expired, n = trimAge(m, tonumber(ARGV[3]))
local depth, _, oldest = summary(m, num(redis.call('HGET', s, 'cin')))
local after = tonumber(ARGV[1])
local from = countBefore(m, n, function(seq) return seq > after end)
local out = {}
if from < n then
  for _, r in ipairs(redis.call('LRANGE', m, from, from + tonumber(ARGV[2]) - 1)) do
    local seq, at, _, tlen, pos = string.match(r, '^(%d+) (%d+) (%d+) (%d+) ()')
    local tend = pos + tonumber(tlen)
    local data = false
    if string.sub(r, tend, tend) == '=' then data = string.sub(r, tend + 1) end
    out[#out + 1] = {tonumber(seq), tonumber(at), string.sub(r, pos, tend - 1), data}
  end
end
return {expired, depth, oldest, out}
`;

/** KEYS: s, m. ARGV: seq. Returns {0, depth, oldest, 1, removed} | {0, depth, oldest, 0, last} (bad_ack). */
const ACK = `${PRELUDE}
local s, m = KEYS[1], KEYS[2]
local st = redis.call('HMGET', s, 'last', 'acked', 'cin')
local seq = tonumber(ARGV[1])
if st[1] == false then return {0, 0, 0, 0, 0} end
local last, acked, cin = num(st[1]), num(st[2]), num(st[3])
local removed = 0
if seq > last then
  local depth, _, oldest = summary(m, cin)
  return {0, depth, oldest, 0, last}
end
if seq > acked then
  redis.call('HSET', s, 'acked', str(seq))
  removed = trimTo(m, seq)
end
local depth, _, oldest = summary(m, cin)
return {0, depth, oldest, 1, removed}
`;

/** KEYS: s, m. ARGV: seq. Returns {0, depth, oldest, removed}. */
const DROP = `${PRELUDE}
local s, m = KEYS[1], KEYS[2]
local removed = trimTo(m, tonumber(ARGV[1]))
local depth, _, oldest = summary(m, num(redis.call('HGET', s, 'cin')))
return {0, depth, oldest, removed}
`;

/** KEYS: s. ARGV: ack. Returns {acked, reset}. */
const LOGIN = `
local s = KEYS[1]
redis.call('HSETNX', s, 'last', '0')
local st = redis.call('HMGET', s, 'acked', 'ann')
local reset = 0
if ARGV[1] == '1' and st[2] ~= '1' then
  redis.call('HSET', s, 'ann', '1')
  reset = 1
end
return {tonumber(st[1]) or 0, reset}
`;

/** KEYS: s, m. Returns nil for a user never seen, else {last, acked, depth, bytes, oldest}. */
const INBOX = `${PRELUDE}
local s, m = KEYS[1], KEYS[2]
local st = redis.call('HMGET', s, 'last', 'acked', 'cin')
if st[1] == false then return false end
local depth, bytes, oldest = summary(m, num(st[3]))
return {num(st[1]), num(st[2]), depth, bytes, oldest}
`;

/** KEYS: s, m. Returns {0, 0, 0, removed}. */
const CLEAR = `
local n = redis.call('LLEN', KEYS[2])
if n > 0 then redis.call('DEL', KEYS[2]) end
return {0, 0, 0, n}
`;

/** KEYS: s, m. ARGV: cut. Returns {expired, depth, oldest}. */
const EXPIRE = `${PRELUDE}
local s, m = KEYS[1], KEYS[2]
local expired = trimAge(m, tonumber(ARGV[1]))
local depth, _, oldest = summary(m, num(redis.call('HGET', s, 'cin')))
return {expired, depth, oldest}
`;

/**
 * One index shard. KEYS: age (zset user -> oldest storedAt), depth (zset
 * user -> messages, so the fullest inboxes are a range), total (the shard's
 * sum of depth). ARGV: triples of
 * user, depth, oldest: what a user script just answered, so the values are
 * set, never added up, and a note that was lost is made good by the next.
 */
const NOTE = `
local delta = 0
for i = 1, #ARGV, 3 do
  local u, d = ARGV[i], tonumber(ARGV[i + 1])
  local old = tonumber(redis.call('ZSCORE', KEYS[2], u)) or 0
  if d > 0 then
    redis.call('ZADD', KEYS[2], ARGV[i + 1], u)
    redis.call('ZADD', KEYS[1], ARGV[i + 2], u)
  else
    redis.call('ZREM', KEYS[2], u)
    redis.call('ZREM', KEYS[1], u)
  end
  delta = delta + d - old
end
if delta ~= 0 then redis.call('INCRBY', KEYS[3], delta) end
return delta
`;

export const SCRIPTS = {
  append: script("append", APPEND),
  route: script("route", ROUTE),
  read: script("read", READ),
  ack: script("ack", ACK),
  drop: script("drop", DROP),
  login: script("login", LOGIN),
  inbox: script("inbox", INBOX),
  clear: script("clear", CLEAR),
  expire: script("expire", EXPIRE),
  note: script("note", NOTE),
} as const;
