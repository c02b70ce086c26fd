-- Counts one recommendation decision, once per decision id, and remembers it so later events
-- of the customer (answers naming it, purchases within the window) count as its outcome.
-- ARGV: prefix, decision id, subject, decided ms, day, action, model version, group (t|h),
--       window ms, ttl s
-- Returns 1 when applied, 0 for a duplicate.
local id, subject, at, day = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local head = ARGV[6] .. '|' .. ARGV[7] .. '|' .. ARGV[8]
local window, ttl = tonumber(ARGV[9]), tonumber(ARGV[10])
local dkey = P .. ':dec:' .. id
if redis.call('HSETNX', dkey, 'k', head) == 0 then return 0 end
redis.call('HSET', dkey, 'day', day)
redis.call('EXPIRE', dkey, ttl)
redis.call('HINCRBY', day_key(day, 'rec'), head .. '|n', 1)
local dlist = customer_key(subject, 'dec')
redis.call('ZADD', dlist, at, id)
redis.call('ZREMRANGEBYSCORE', dlist, '-inf', '(' .. (at - window))
redis.call('EXPIRE', dlist, ttl)
return 1
