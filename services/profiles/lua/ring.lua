-- Shared by the profile and analytics scripts.
-- The dedupe ring: 6-byte ids, oldest first, at most `cap` of them.
local ID_BYTES = 6
local WIDE_ID_BYTES = 8  -- earlier versions
local function ring_has(ring, id)
  local start = 1
  while true do
    local i = string.find(ring, id, start, true)
    if not i then return false end
    if (i - 1) % ID_BYTES == 0 then return true end
    start = i + 1
  end
end

local function ring_trim(ring, cap)
  if #ring > cap * ID_BYTES then return string.sub(ring, #ring - cap * ID_BYTES + 1) end
  return ring
end

-- A ring of earlier versions (8-byte ids) as a current one: the first 6 bytes of each id are
-- the id this version computes for the same event.
local function ring_narrowed(wide)
  if not wide or wide == '' then return '' end
  local out = {}
  for i = 1, #wide, WIDE_ID_BYTES do out[#out + 1] = string.sub(wide, i, i + ID_BYTES - 1) end
  return table.concat(out)
end
