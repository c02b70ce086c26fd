-- Identity stitching, step 1 (anonymous subject's slot): point the anonymous id at the
-- customer and hand back its history. From here on `apply` redirects its events.
-- KEYS: anonymous profile, anonymous timeline, alias
-- ARGV: customer id
-- Returns {1, packed state or '', timeline...} or {-1, other customer} (first link wins).
local linked = redis.call('GET', KEYS[3])
if linked and linked ~= ARGV[1] then return {-1, linked} end
if not linked then redis.call('SET', KEYS[3], ARGV[1]) end
local result = {1, redis.call('GET', KEYS[1]) or ''}
for _, line in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do result[#result + 1] = line end
return result
