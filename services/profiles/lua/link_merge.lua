-- Identity stitching, step 2 (customer's slot): merge the anonymous history once.
-- KEYS: customer profile, customer timeline list of earlier versions, customer tombstone
-- ARGV: anonymous id, packed anonymous state ('' = none), timeline cap, dedupe cap,
--       link epoch ms, anonymous timeline lines of an earlier version...
-- Returns 1 merged, 0 merged before, 2 refused (customer erased).
if refused_by_tombstone(KEYS[3], tonumber(ARGV[5])) then return 2 end
local packed = redis.call('GET', KEYS[1])
local state = packed and cmsgpack.unpack(packed) or {}
for _, alias in ipairs(state.al or {}) do
  if alias == ARGV[1] then return 0 end
end
local other = ARGV[2] ~= '' and cmsgpack.unpack(ARGV[2]) or {}
local ring = (state.si or ring_narrowed(state.sn)) .. (other.si or ring_narrowed(other.sn))
local lines = timeline_lines(take_timeline(state, packed, KEYS[2]))
for _, line in ipairs(timeline_lines(other.tl or '')) do lines[#lines + 1] = line end
for i = 6, #ARGV do lines[#lines + 1] = ARGV[i] end
state.si, state.sn = nil, nil
other.si, other.sn = nil, nil
other.tl = nil
other.al = {ARGV[1]}
merge_state(state, other)
state.tl = timeline_merge(lines, tonumber(ARGV[3]))
state.si = ring_trim(ring, tonumber(ARGV[4]))
redis.call('SET', KEYS[1], cmsgpack.pack(state))
return 1
