-- Shared by every profile script: the merge of packed profile states. It mirrors
-- services/profiles/fold.py `merge_state` field by field; a test runs both on the same streams.
local DAY_MS = 86400000
local DECAY_QUANTUM = 1024  -- decayed sums kept to 1/1024: a 4-byte float in msgpack
local TOP_K = {bx = 10, oc = 30, ['do'] = 10}
local MAX_ALIASES = 200

-- Byte-wise string order (Lua's `<` on strings follows the server locale).
local function str_less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function value_less(a, b)
  if type(a) == 'number' and type(b) == 'number' then return a < b end
  return str_less(tostring(a), tostring(b))
end

local function entry_less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    if a[i] ~= b[i] then return value_less(a[i], b[i]) end
  end
  return #a < #b
end

-- Timeline lines start with a fixed-width base-36 time, so byte order is time order.
local line_less = str_less

local function merge_top_k(left, right, k)
  local all = {}
  for _, e in ipairs(left or {}) do all[#all + 1] = e end
  for _, e in ipairs(right or {}) do all[#all + 1] = e end
  if #all == 0 then return nil end
  table.sort(all, entry_less)
  local out = {}
  for i = math.max(1, #all - k + 1), #all do out[#out + 1] = all[i] end
  return out
end

-- In place: rescale `a` to the later reference time, then add `b` rescaled to it.
local function merge_decayed(a, b)
  if b.dr == nil then return end
  if a.dr == nil then a.dr = b.dr; a.dc = b.dc; return end
  local ref = math.max(a.dr, b.dr)
  a.dc = a.dc or {}
  for h, right in pairs(b.dc or {}) do
    if a.dc[h] == nil then a.dc[h] = {} end
  end
  for h, left in pairs(a.dc) do
    local tau = tonumber(h) * DAY_MS
    if ref ~= a.dr then
      local fa = math.exp(-(ref - a.dr) / tau)
      for name, v in pairs(left) do left[name] = v * fa end
    end
    local right = b.dc and b.dc[h]
    if right then
      local fb = 1
      if ref ~= b.dr then fb = math.exp(-(ref - b.dr) / tau) end
      for name, v in pairs(right) do left[name] = (left[name] or 0) + v * fb end
    end
    for name, v in pairs(left) do
      left[name] = math.floor(v * DECAY_QUANTUM + 0.5) / DECAY_QUANTUM
    end
  end
  a.dr = ref
end

local function merge_state(a, b)
  if b.n then
    a.n = a.n or {}
    for k, v in pairs(b.n) do a.n[k] = (a.n[k] or 0) + v end
  end
  if b.mx then
    a.mx = a.mx or {}
    for k, v in pairs(b.mx) do
      local c = a.mx[k]
      if c == nil or v > c then a.mx[k] = v end
    end
  end
  if b.mn then
    a.mn = a.mn or {}
    for k, v in pairs(b.mn) do
      local c = a.mn[k]
      if c == nil or v < c then a.mn[k] = v end
    end
  end
  if b.lw then
    a.lw = a.lw or {}
    for k, v in pairs(b.lw) do
      local c = a.lw[k]
      if c == nil or v[1] > c[1] or (v[1] == c[1] and str_less(c[2], v[2])) then a.lw[k] = v end
    end
  end
  merge_decayed(a, b)
  for field, k in pairs(TOP_K) do
    if b[field] then a[field] = merge_top_k(a[field], b[field], k) end
  end
  if b.al then
    local set, list = {}, {}
    for _, x in ipairs(a.al or {}) do set[x] = true end
    for _, x in ipairs(b.al) do set[x] = true end
    for x in pairs(set) do list[#list + 1] = x end
    table.sort(list, str_less)
    while #list > MAX_ALIASES do table.remove(list) end
    a.al = list
  end
end

-- The timeline is one string in the profile value (field `tl`): lines in time order, joined
-- by newlines (a line never holds one: its extras are JSON). Earlier versions kept a list.
local NEWLINE = 10

local function timeline_lines(text)
  local lines = {}
  for line in string.gmatch(text, '[^\n]+') do lines[#lines + 1] = line end
  return lines
end

-- The stored timeline, moving a list written by an earlier version into the string.
local function take_timeline(state, existed, list_key)
  local text = state.tl
  state.tl = nil
  if text == nil and existed then
    local lines = redis.call('LRANGE', list_key, 0, -1)
    if #lines > 0 then redis.call('DEL', list_key) end
    text = table.concat(lines, '\n')
  end
  return text or ''
end

-- Keeps the latest `cap` lines. Lines are at least 12 bytes (8-digit time, '|', touchpoint),
-- so a short text needs no count.
local function timeline_trim(text, cap)
  if #text < cap * 13 then return text end
  local _, breaks = string.gsub(text, '\n', '\n')
  local start = 1
  for _ = 1, breaks + 1 - cap do start = string.find(text, '\n', start, true) + 1 end
  if start == 1 then return text end
  return string.sub(text, start)
end

local function timeline_insert(text, line, cap)
  if text == '' then return line end
  local last_start = 1
  for i = #text, 1, -1 do
    if string.byte(text, i) == NEWLINE then last_start = i + 1; break end
  end
  if not line_less(line, string.sub(text, last_start)) then
    return timeline_trim(text .. '\n' .. line, cap)
  end
  local lines = timeline_lines(text)
  if #lines >= cap and not line_less(lines[1], line) then return text end
  for i = 1, #lines do
    if line_less(line, lines[i]) then table.insert(lines, i, line); break end
  end
  return timeline_trim(table.concat(lines, '\n'), cap)
end

-- Lines of both timelines in time order, the latest `cap` of them.
local function timeline_merge(lines, cap)
  table.sort(lines, line_less)
  return table.concat(lines, '\n', math.max(1, #lines - cap + 1), #lines)
end

local function refused_by_tombstone(key, occurred_ms)
  local erased = redis.call('GET', key)
  return erased and occurred_ms <= tonumber(erased)
end
