-- Identity stitching, step 3 (anonymous subject's slot): drop the merged history, keep the
-- alias so later events for the anonymous id go to the customer.
-- KEYS: anonymous profile, anonymous timeline, alias
-- ARGV: customer id
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
