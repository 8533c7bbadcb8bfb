/**
 * The Lua scripts of queue-redis. Each takes exactly one key, the message's
 * hash (`<prefix>m:{<id>}`), so it runs atomically on the one slot that
 * holds the message, on a single Redis and on a Cluster alike. The global
 * indexes (the due and all sorted sets) are updated by the caller after the
 * script, and are only hints: the hash is the truth, and whoever finds an
 * index entry that disagrees with it corrects the entry.
 *
 * Hash fields: record (JSON, opaque to Lua), body, next (due time, ms),
 * held ('1' or absent), token and deadline (the lease).
 *
 * Times come from the caller's clock (ARGV), not Redis TIME, so every node
 * and test uses one notion of now; nodes are expected to run NTP.
 */

/**
 * Leases the message if it is due, not held and not leased.
 * ARGV: now, leaseMs, token, ignoreDue ('1' for operator claims).
 * Returns {'ok', record, deadline, held} | {'gone'} | {'held'} | {'leased', deadline} | {'later', next}.
 */
export const LEASE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
local now = tonumber(ARGV[1])
local fields = redis.call('HMGET', KEYS[1], 'record', 'next', 'held', 'token', 'deadline')
local claim = ARGV[4] == '1'
if fields[4] and tonumber(fields[5]) > now then return {'leased', fields[5]} end
if not claim then
  if fields[3] == '1' then return {'held'} end
  if tonumber(fields[2]) > now then return {'later', fields[2]} end
end
local deadline = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'token', ARGV[3], 'deadline', deadline)
return {'ok', fields[1], tostring(deadline), fields[3] or '0', fields[2]}
`;

/**
 * Records a delivery attempt if the caller still holds the lease.
 * ARGV: token, record ('' when every recipient is finished: the message is deleted), next.
 * Returns {'lost'} | {'deleted'} | {'kept', held}.
 */
export const SETTLE = `
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return {'lost'} end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  return {'deleted'}
end
redis.call('HSET', KEYS[1], 'record', ARGV[2], 'next', ARGV[3])
redis.call('HDEL', KEYS[1], 'token', 'deadline')
return {'kept', redis.call('HGET', KEYS[1], 'held') or '0'}
`;

/**
 * Gives a lease back: the message is due at ARGV[2] (now, or later when postponed).
 * ARGV: token, due. Returns {'lost'} | {'released', held}.
 */
export const ABANDON = `
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return {'lost'} end
redis.call('HDEL', KEYS[1], 'token', 'deadline')
redis.call('HSET', KEYS[1], 'next', ARGV[2])
return {'released', redis.call('HGET', KEYS[1], 'held') or '0'}
`;

/**
 * Operator changes: sets fields on an existing message only (HSET alone
 * would create a half message from a stale id).
 * ARGV: field, value, field, value, ... Returns 0 if the message does not exist,
 * else the message's due time.
 */
export const UPDATE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return tonumber(redis.call('HGET', KEYS[1], 'next'))
`;
