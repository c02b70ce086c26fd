-- Apply one event or decision delta to one subject, atomically with its dedupe check.
-- KEYS: profile, timeline list of earlier versions, tombstone, alias
-- ARGV: dedupe id (6 bytes), packed delta state, timeline line ('' = none), timeline cap,
--       dedupe cap, occurred epoch ms
-- Returns {1} applied, {0} duplicate, {2} refused (erased), {3, customer} merged into customer.
local occurred_ms = tonumber(ARGV[6])
if refused_by_tombstone(KEYS[3], occurred_ms) then return {2} end
-- The ring is checked before the alias: between the two link steps a taken anonymous
-- history still holds its events, and the customer will absorb them with it.
local packed = redis.call('GET', KEYS[1])
local state = packed and cmsgpack.unpack(packed) or {}
local ring = state.si or ring_narrowed(state.sn)
if ring_has(ring, ARGV[1]) then return {0} end
local merged_into = redis.call('GET', KEYS[4])
if merged_into then return {3, merged_into} end
state.si, state.sn = nil, nil
local timeline = take_timeline(state, packed, KEYS[2])
merge_state(state, cmsgpack.unpack(ARGV[2]))
if ARGV[3] ~= '' then timeline = timeline_insert(timeline, ARGV[3], tonumber(ARGV[4])) end
state.tl = timeline
state.si = ring_trim(ring .. ARGV[1], tonumber(ARGV[5]))
redis.call('SET', KEYS[1], cmsgpack.pack(state))
return {1}
