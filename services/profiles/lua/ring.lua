-- Shared by the profile and analytics scripts.
-- The dedupe ring: 8-byte ids, oldest first, at most `cap` of them.
local function ring_has(ring, id)
  local start = 1
  while true do
    local i = string.find(ring, id, start, true)
    if not i then return false end
    if (i - 1) % 8 == 0 then return true end
    start = i + 1
  end
end

local function ring_trim(ring, cap)
  if #ring > cap * 8 then return string.sub(ring, #ring - cap * 8 + 1) end
  return ring
end
