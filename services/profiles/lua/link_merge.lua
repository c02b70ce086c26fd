-- Identity stitching, step 2 (customer's slot): merge the anonymous history once.
-- KEYS: customer profile, customer timeline, customer tombstone
-- ARGV: anonymous id, packed anonymous state ('' = none), timeline cap, dedupe cap,
--       link epoch ms, anonymous timeline lines...
-- Returns 1 merged, 0 merged before, 2 refused (customer erased).
if refused_by_tombstone(KEYS[3], tonumber(ARGV[5])) then return 2 end
local packed = redis.call('GET', KEYS[1])
local state = packed and cmsgpack.unpack(packed) or {}
for _, alias in ipairs(state.al or {}) do
  if alias == ARGV[1] then return 0 end
end
local other = ARGV[2] ~= '' and cmsgpack.unpack(ARGV[2]) or {}
local ring = (state.sn or '') .. (other.sn or '')
state.sn = nil
other.sn = nil
other.al = {ARGV[1]}
merge_state(state, other)
state.sn = ring_trim(ring, tonumber(ARGV[4]))
redis.call('SET', KEYS[1], cmsgpack.pack(state))
local cap = tonumber(ARGV[3])
if #ARGV > 5 then
  local lines = redis.call('LRANGE', KEYS[2], 0, -1)
  for i = 6, #ARGV do lines[#lines + 1] = ARGV[i] end
  table.sort(lines, line_less)
  redis.call('DEL', KEYS[2])
  local first = math.max(1, #lines - cap + 1)
  for i = first, #lines, 500 do
    redis.call('RPUSH', KEYS[2], unpack(lines, i, math.min(i + 499, #lines)))
  end
end
return 1
