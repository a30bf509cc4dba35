/**
 * The Lua scripts of the Redis delivery store. Every change to a user's
 * stream is one script over that user's keys only (`{u:NAME}` tags put them
 * in one hash slot), so it is atomic on one Redis and allowed on Redis
 * Cluster; the index shards have a script of their own.
 *
 * A user's keys:
 * - `<prefix>{u:NAME}:s`, a hash: `last` (the last seq given), `acked`,
 *   `ann` (1 once announced to an acknowledging session), `cin` (bytes of
 *   data ever kept), `at` (the newest storedAt, so storedAt never goes back).
 * - `<prefix>{u:NAME}:m`, a Stream: one entry per kept message, id
 *   `<seq>-0`, fields `a` (storedAt), `c` (`cin` before it), `t` (type) and
 *   `d` (data; absent for none). What is removed is always a prefix of the
 *   stream (acks and drops are cumulative, storedAt never decreases), so
 *   depth is XLEN and bytes are `cin` minus the first entry's `c`: no
 *   per-user counter that could drift from what is stored. A stream left
 *   empty is deleted (ids go on from `last`, not from the stream).
 * - `<prefix>{u:NAME}:n`, the sharded pub/sub channel an append may publish on.
 *
 * Numbers cross into Lua as decimal strings and are written back with
 * `%.0f`: Lua 5.1's own tostring switches to exponent form past 14 digits.
 * @module
 */
import { createHash } from "node:crypto";

/** Helpers every user script starts with. */
const PRELUDE = `
local function num(x) return tonumber(x) or 0 end
local function str(x) return string.format('%.0f', x) end
local function seqOf(id) return tonumber(string.match(id, '^(%d+)')) end
-- the fields of the stream's first message, nil when there is none
local function firstOf(m)
  local e = redis.call('XRANGE', m, '-', '+', 'COUNT', 1)[1]
  if e == nil then return nil end
  return e[2]
end
-- depth, bytes and oldest storedAt of the stream (0, 0, 0 when empty), given its first message
local function summary(m, first, cin)
  if first == nil then return 0, 0, 0 end
  return redis.call('XLEN', m), cin - tonumber(first[4]), tonumber(first[2])
end
-- removes the messages stored before cut: a prefix of the stream; the first message alone
-- tells whether there is anything to do (the usual case: nothing), then pages of 100.
-- Returns how many went, and the fields of the first message left.
local function trimAge(m, cut)
  local removed, count = 0, 1
  while true do
    local page = redis.call('XRANGE', m, '-', '+', 'COUNT', count)
    local lastOld, first = nil, nil
    for _, e in ipairs(page) do
      if tonumber(e[2][2]) >= cut then
        first = e[2]
        break
      end
      lastOld = e[1]
    end
    if lastOld ~= nil then removed = removed + redis.call('XTRIM', m, 'MINID', str(seqOf(lastOld) + 1)) end
    if first ~= nil then return removed, first end
    if #page < count then
      if removed > 0 then redis.call('DEL', m) end
      return removed, nil
    end
    count = 100
  end
end
`;

/**
 * KEYS: s, m, n. ARGV: now, cut, maxMessages, maxBytes, ttlMs, keep, type,
 * hasData, data, hasNotify, notify.
 * Returns {expired, depth, oldest, 1, seq} | {.., 2, depth} (too many) | {.., 3, bytes, size} (too big).
 * The notification is published after the message is stored, in the same
 * script: a subscriber told of seq N can read it at once.
 */
const APPEND = `${PRELUDE}
local s, m = KEYS[1], KEYS[2]
local expired, first = trimAge(m, tonumber(ARGV[2]))
local st = redis.call('HMGET', s, 'last', 'cin', 'at')
local last, cin, at = num(st[1]), num(st[2]), num(st[3])
if last == 0 and redis.call('EXISTS', m) == 1 then
  -- the hash is new but the stream is not (the hash was lost): ids must still grow
  local info = redis.call('XINFO', 'STREAM', m)
  for i = 1, #info, 2 do if info[i] == 'last-generated-id' then last = seqOf(info[i + 1]) end end
end
local depth, bytes, oldest = summary(m, first, cin)
if ARGV[6] == '1' then
  local size = 0
  if ARGV[8] == '1' then size = #ARGV[9] end
  if depth + 1 > tonumber(ARGV[3]) then return {expired, depth, oldest, 2, depth} end
  if bytes + size > tonumber(ARGV[4]) then return {expired, depth, oldest, 3, bytes, size} end
  last = last + 1
  at = math.max(tonumber(ARGV[1]), at)
  if ARGV[8] == '1' then
    redis.call('XADD', m, str(last) .. '-0', 'a', str(at), 'c', str(cin), 't', ARGV[7], 'd', ARGV[9])
  else
    redis.call('XADD', m, str(last) .. '-0', 'a', str(at), 'c', str(cin), 't', ARGV[7])
  end
  redis.call('PEXPIRE', m, ARGV[5])
  if depth == 0 then oldest = at end
  depth = depth + 1
  redis.call('HSET', s, 'last', str(last), 'cin', str(cin + size), 'at', str(at))
else
  last = last + 1
  redis.call('HSET', s, 'last', str(last))
end
if ARGV[10] == '1' then redis.call('SPUBLISH', KEYS[3], str(last) .. ' ' .. ARGV[11]) end
return {expired, depth, oldest, 1, last}
`;

/** KEYS: s, m. ARGV: after, limit, cut. Returns {expired, depth, oldest, entries}. */
const READ = `${PRELUDE}
local s, m = KEYS[1], KEYS[2]
local expired, first = trimAge(m, tonumber(ARGV[3]))
local depth, _, oldest = summary(m, first, num(redis.call('HGET', s, 'cin')))
return {expired, depth, oldest, redis.call('XRANGE', m, str(tonumber(ARGV[1]) + 1), '+', 'COUNT', ARGV[2])}
`;

/** KEYS: s, m. ARGV: seq. Returns {0, depth, oldest, 1, removed} | {0, depth, oldest, 0, last} (bad_ack). */
const ACK = `${PRELUDE}
local s, m = KEYS[1], KEYS[2]
local st = redis.call('HMGET', s, 'last', 'acked', 'cin')
local seq = tonumber(ARGV[1])
if st[1] == false then return {0, 0, 0, 0, 0} end
local last, acked, cin = num(st[1]), num(st[2]), num(st[3])
local depth, _, oldest = summary(m, firstOf(m), cin)
if seq > last then return {0, depth, oldest, 0, last} end
if seq <= acked then return {0, depth, oldest, 1, 0} end
redis.call('HSET', s, 'acked', str(seq))
local removed = redis.call('XTRIM', m, 'MINID', str(seq + 1))
depth, _, oldest = summary(m, firstOf(m), cin)
if depth == 0 and removed > 0 then redis.call('DEL', m) end
return {0, depth, oldest, 1, removed}
`;

/** KEYS: s, m. ARGV: seq. Returns {0, depth, oldest, removed}. */
const DROP = `${PRELUDE}
local s, m = KEYS[1], KEYS[2]
local removed = redis.call('XTRIM', m, 'MINID', str(tonumber(ARGV[1]) + 1))
local depth, _, oldest = summary(m, firstOf(m), num(redis.call('HGET', s, 'cin')))
if depth == 0 and removed > 0 then redis.call('DEL', m) end
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
local depth, bytes, oldest = summary(m, firstOf(m), num(st[3]))
return {num(st[1]), num(st[2]), depth, bytes, oldest}
`;

/** KEYS: s, m. Returns {0, 0, 0, removed}. */
const CLEAR = `
local n = redis.call('XLEN', KEYS[2])
if n > 0 then redis.call('DEL', KEYS[2]) end
return {0, 0, 0, n}
`;

/** KEYS: s, m. ARGV: cut. Returns {expired, depth, oldest}. */
const EXPIRE = `${PRELUDE}
local s, m = KEYS[1], KEYS[2]
local expired, first = trimAge(m, tonumber(ARGV[1]))
local depth, _, oldest = summary(m, first, num(redis.call('HGET', s, 'cin')))
return {expired, depth, oldest}
`;

/**
 * One index shard. KEYS: age (zset user -> oldest storedAt), depth (hash
 * user -> messages), total (the shard's sum of depth). ARGV: triples of
 * user, depth, oldest: what a user script just answered, so the values are
 * set, never added up, and a note that was lost is made good by the next.
 */
const NOTE = `
local delta = 0
for i = 1, #ARGV, 3 do
  local u, d = ARGV[i], tonumber(ARGV[i + 1])
  local old = tonumber(redis.call('HGET', KEYS[2], u)) or 0
  if d > 0 then
    redis.call('HSET', KEYS[2], u, ARGV[i + 1])
    redis.call('ZADD', KEYS[1], ARGV[i + 2], u)
  else
    redis.call('HDEL', KEYS[2], u)
    redis.call('ZREM', KEYS[1], u)
  end
  delta = delta + d - old
end
if delta ~= 0 then redis.call('INCRBY', KEYS[3], delta) end
return delta
`;

export interface Script {
  name: string;
  text: string;
  sha: string;
}

function script(name: string, text: string): Script {
  return { name, text, sha: createHash("sha1").update(text).digest("hex") };
}

export const SCRIPTS = {
  append: script("append", APPEND),
  read: script("read", READ),
  ack: script("ack", ACK),
  drop: script("drop", DROP),
  login: script("login", LOGIN),
  inbox: script("inbox", INBOX),
  clear: script("clear", CLEAR),
  expire: script("expire", EXPIRE),
  note: script("note", NOTE),
} as const;
