/**
 * The Lua scripts of a cluster's presence and node registry. Each touches
 * one hash slot (one user's, one node's, or the registry's), so each is
 * atomic on one Redis and allowed on Redis Cluster.
 *
 * Epochs: a node registers its users under an epoch, a number that only
 * grows (the time it (re)registered). A write carrying an older epoch than
 * the one a field holds is ignored, and a purge removes only the fields of
 * the epoch it purges, so a node that re-registers while it is being purged
 * keeps what it wrote since.
 * @module
 */
import { script } from "../redis/script.ts";

/**
 * KEYS: presence, node users. ARGV: node, epoch, user, plain, ack (the
 * node's sessions of the user now, not a change: the last write wins).
 * Returns 1, or 0 when a newer epoch holds the field.
 */
const PRESENCE = `
local p, nu = KEYS[1], KEYS[2]
local node, epoch, user, plain, ack = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local cur = redis.call('HGET', p, node)
if cur then
  local e = tonumber(string.match(cur, '^(%d+) '))
  if e and e > epoch then return 0 end
end
if plain + ack == 0 then
  redis.call('HDEL', p, node)
else
  redis.call('HSET', p, node, ARGV[2] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5])
end
return 1
`;

/** KEYS: presence. ARGV: node, epoch. Removes the node's field if it is of that epoch; returns 1 if it did. */
const PURGE_USER = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and string.match(cur, '^(%d+) ') == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
`;

/**
 * KEYS: nodes, info. ARGV: node, epoch, now, info JSON.
 * Registers the node under a new epoch; returns the epoch it had (0: none),
 * whose leftovers the caller purges.
 */
const REGISTER = `
local old = redis.call('HGET', KEYS[2], ARGV[1])
local oldEpoch = 0
if old then oldEpoch = cjson.decode(old).epoch or 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
return oldEpoch
`;

/**
 * KEYS: nodes, info. ARGV: node, epoch, now, info JSON.
 * Returns 0 (beat noted), 1 (not registered: purged as dead; the caller
 * registers again) or 2 (another gateway registered under this name).
 */
const HEARTBEAT = `
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if not cur then return 1 end
if string.format('%.0f', cjson.decode(cur).epoch or 0) ~= ARGV[2] then return 2 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
return 0
`;

/**
 * KEYS: nodes, info, purging. ARGV: node, cutoff, now, takeoverCutoff.
 * Claims the purge of a node whose last beat is before cutoff: it leaves the
 * registry and enters `purging` (member "node epoch"), so only one live node
 * purges it. Also hands out a purge claimed before takeoverCutoff (its
 * purger died). Returns {node, epoch} claimed, or false.
 */
const CLAIM = `
local score = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if score and score < tonumber(ARGV[2]) then
  local info = redis.call('HGET', KEYS[2], ARGV[1])
  local epoch = 0
  if info then epoch = cjson.decode(info).epoch or 0 end
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  local member = ARGV[1] .. ' ' .. string.format('%.0f', epoch)
  redis.call('ZADD', KEYS[3], ARGV[3], member)
  return member
end
local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[4], 'LIMIT', 0, 1)
if stale[1] then
  redis.call('ZADD', KEYS[3], ARGV[3], stale[1])
  return stale[1]
end
return false
`;

/** KEYS: nodes, info. Returns {node, lastBeat, info JSON or false, ...} for every registered node. */
const NODES = `
local out = {}
local z = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #z, 2 do
  out[#out + 1] = z[i]
  out[#out + 1] = z[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], z[i])
end
return out
`;

export const CLUSTER_SCRIPTS = {
  presence: script("presence", PRESENCE),
  purgeUser: script("purgeUser", PURGE_USER),
  register: script("register", REGISTER),
  heartbeat: script("heartbeat", HEARTBEAT),
  claim: script("claim", CLAIM),
  nodes: script("nodes", NODES),
} as const;
