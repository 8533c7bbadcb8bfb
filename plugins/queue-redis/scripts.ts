/**
 * The Lua scripts of queue-redis. Each takes exactly one key, the message's
 * hash (`<prefix>m:{<id>}`), so it runs atomically on the one slot that
 * holds the message, on a single Redis and on a Cluster alike. The global
 * indexes (the due and all sorted sets) are updated by the caller after the
 * script, and are only hints: the hash is the truth, and whoever finds an
 * index entry that disagrees with it corrects the entry.
 *
 * Hash fields: record (JSON, opaque to Lua), body, next (due time, ms),
 * held ('1' or absent), token and deadline (the lease), ended (the token of
 * the last lease that was settled or given back). A message that is being
 * stored has a TTL until the node confirms it (see STORE).
 *
 * Every script's first argument is the caller's deadline (epoch ms): a
 * script that Redis runs later changes nothing and answers {'expired'}.
 * Commands can reach Redis long after the caller gave up on them (ioredis
 * keeps commands while Redis is away and sends them when it is back, and
 * resends those that were in flight; a frozen Redis runs what waits in its
 * socket when it thaws), and a write nobody waits for any more must not
 * happen: an enqueue answered 451 would leave a message nobody knows of, a
 * lease a message held by nobody.
 *
 * Other times come from the caller's clock (ARGV), not Redis TIME, so every
 * node and test uses one notion of now; nodes are expected to run NTP.
 */

/** Stops the script when Redis runs it after the caller's deadline (ARGV[1]). */
const UNLESS_EXPIRED = `
local clock = redis.call('TIME')
if tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) > tonumber(ARGV[1]) then return {'expired'} end
`;

/**
 * Stores a new message, kept only for ARGV[5] ms until CONFIRM makes it
 * permanent: the node indexes it in between, and a node that dies (or
 * loses Redis) before confirming leaves nothing behind (its client got no
 * 250). ARGV: deadline, record, next, body, ttlMs. Returns {'ok'} | {'exists'} | {'expired'}.
 */
export const STORE =
  UNLESS_EXPIRED +
  `
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
redis.call('HSET', KEYS[1], 'record', ARGV[2], 'next', ARGV[3], 'body', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {'ok'}
`;

/**
 * Makes a stored message permanent (the client gets its 250 after this).
 * ARGV: deadline. Returns {'ok', 'new'} (this call made it permanent: the caller counts it) |
 * {'ok'} (a repeat) | {'gone'} (it expired: too late) | {'expired'}.
 *
 * A repeat of a confirmation that went through answers {'ok'} again, late or
 * not: ioredis sends a command again after reconnecting when its reply was
 * lost with the connection, and the message is kept either way, so anything
 * but 'ok' would get the client a 451 for a message that will be delivered
 * (and a duplicate when it sends it again). A message without a TTL is a
 * confirmed one: only STORE sets a TTL, and nothing else removes it.
 */
export const CONFIRM =
  `
if redis.call('PTTL', KEYS[1]) == -1 then return {'ok'} end
` +
  UNLESS_EXPIRED +
  `
if redis.call('PERSIST', KEYS[1]) == 1 then return {'ok', 'new'} end
return {'gone'}
`;

/**
 * Leases the message if it is due, not held and not leased.
 * ARGV: deadline, now, leaseMs, token, ignoreDue ('1' for operator claims).
 * Returns {'ok', record, deadline, held, next} | {'gone'} | {'unconfirmed'} | {'held'} |
 * {'leased', deadline} | {'later', next} | {'expired'}.
 */
export const LEASE =
  UNLESS_EXPIRED +
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
if redis.call('PTTL', KEYS[1]) >= 0 then return {'unconfirmed'} end
local now = tonumber(ARGV[2])
local fields = redis.call('HMGET', KEYS[1], 'record', 'next', 'held', 'token', 'deadline')
local claim = ARGV[5] == '1'
if fields[4] and tonumber(fields[5]) > now then return {'leased', fields[5]} end
if not claim then
  if fields[3] == '1' then return {'held'} end
  if tonumber(fields[2]) > now then return {'later', fields[2]} end
end
local deadline = now + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'token', ARGV[4], 'deadline', deadline)
return {'ok', fields[1], tostring(deadline), fields[3] or '0', fields[2]}
`;

/**
 * What SETTLE and ABANDON answer to a repeat of a call that already ended
 * the lease (its caller could not update the index afterwards, or lost the
 * answer, and tries again): the answer again, with the message's due time,
 * so the caller can finish its index update, marked 'again' (the caller counted
 * the change the first time). Anyone else's stale token is 'lost'.
 */
const repeatedEnd = (answer: 'kept' | 'released') => `
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then
  if redis.call('HGET', KEYS[1], 'ended') == ARGV[2] then return {'${answer}', redis.call('HGET', KEYS[1], 'held') or '0', redis.call('HGET', KEYS[1], 'next'), 'again'} end
  return {'lost'}
end
`;

/**
 * Records a delivery attempt if the caller still holds the lease.
 * ARGV: deadline, token, record ('' when every recipient is finished: the message is deleted), next.
 * Returns {'lost'} | {'deleted', held} | {'kept', held, next} | {'expired'}.
 */
export const SETTLE =
  UNLESS_EXPIRED +
  repeatedEnd('kept') +
  `
if ARGV[3] == '' then
  local held = redis.call('HGET', KEYS[1], 'held') or '0'
  redis.call('DEL', KEYS[1])
  return {'deleted', held}
end
redis.call('HSET', KEYS[1], 'record', ARGV[3], 'next', ARGV[4], 'ended', ARGV[2])
redis.call('HDEL', KEYS[1], 'token', 'deadline')
return {'kept', redis.call('HGET', KEYS[1], 'held') or '0', ARGV[4]}
`;

/**
 * Gives a lease back: the message is due at ARGV[3] (now, or later when postponed).
 * ARGV: deadline, token, due. Returns {'lost'} | {'released', held, next} | {'expired'}.
 */
export const ABANDON =
  UNLESS_EXPIRED +
  repeatedEnd('released') +
  `
redis.call('HDEL', KEYS[1], 'token', 'deadline')
redis.call('HSET', KEYS[1], 'next', ARGV[3], 'ended', ARGV[2])
return {'released', redis.call('HGET', KEYS[1], 'held') or '0', ARGV[3]}
`;

/**
 * Operator changes: sets fields on an existing message only (HSET alone
 * would create a half message from a stale id). Answers with the record and
 * whether it was held before, so the caller can move the message's share of
 * the counters.
 * ARGV: deadline, field, value, field, value, ... ('' deletes the field).
 * Returns {'gone'} | {'ok', next, record, heldBefore} | {'expired'}.
 */
export const UPDATE =
  UNLESS_EXPIRED +
  `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone'} end
local before = redis.call('HMGET', KEYS[1], 'record', 'held')
for i = 2, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return {'ok', redis.call('HGET', KEYS[1], 'next'), before[1], before[2] or '0'}
`;

/**
 * Removes a message (an operator's delete), answering with what it was, so
 * the caller can take its share off the counters. A message still being
 * stored (with a TTL) is not removed: it was never counted, and its node
 * gets 'gone' when it confirms. ARGV: deadline.
 * Returns {'removed', record, held} | {'gone'} | {'expired'}.
 */
export const REMOVE =
  UNLESS_EXPIRED +
  `
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('PTTL', KEYS[1]) >= 0 then return {'gone'} end
local fields = redis.call('HMGET', KEYS[1], 'record', 'held')
redis.call('DEL', KEYS[1])
return {'removed', fields[1], fields[2] or '0'}
`;

/**
 * Moves counters in the counters hash (queue-counts.ts), the one script on
 * another key than a message's: ARGV is field, delta, field, delta, ... A
 * field back at zero is deleted, so an empty queue leaves no key behind.
 * Returns 'ok'.
 */
export const COUNT = `
for i = 1, #ARGV, 2 do
  if redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) == 0 then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
return 'ok'
`;
