-- Shared by the analytics scripts. Key names mirror services/profiles/analytics/keys.py.
-- Every script gets the key prefix (`<namespace>:an`) as ARGV[1].
local P = ARGV[1]
local MAX_PATH = 8       -- touches kept per open journey (attribution paths)
local MAX_DEPTH = 6      -- Sankey columns
local SEEN_KEEP = 512    -- event ids remembered per customer for redelivery
-- Upper bounds (seconds) of the wait buckets of the funnel; the last bucket is open.
local WAIT_BOUNDS = {3600, 21600, 86400, 259200, 604800, 1209600, 2592000, 7776000}
local SEGMENTS = {'prospect', 'first_time_buyer', 'repeat_buyer'}

local function day_key(day, name) return P .. ':d:' .. day .. ':' .. name end
local function customer_key(subject, name) return P .. ':c:' .. subject .. ':' .. name end

local function segment_of(purchases)
  if purchases <= 0 then return SEGMENTS[1] end
  if purchases == 1 then return SEGMENTS[2] end
  return SEGMENTS[3]
end

local function split(text, sep)
  local out = {}
  for part in string.gmatch(text, '([^' .. sep .. ']+)') do out[#out + 1] = part end
  return out
end

-- A touch entry: "<at ms, 13 digits>|touchpoint|channel|phase|segment|day".
local function parse_touch(entry)
  local f = split(entry, '|')
  return {at = tonumber(f[1]), tp = f[2], ch = f[3], ph = f[4], seg = f[5], day = f[6]}
end

local function read_touches(subject)
  local entries = redis.call('LRANGE', customer_key(subject, 'tx'), 0, -1)
  local touches = {}
  for i, entry in ipairs(entries) do touches[i] = parse_touch(entry) end
  table.sort(touches, function(a, b) return a.at < b.at end)
  return touches
end

-- One journey into the path counts of its day: n = journeys, c = conversions, r = revenue.
local function count_path(day, segment, touches, converted, revenue)
  local channels, points = {}, {}
  for i, t in ipairs(touches) do channels[i] = t.ch; points[i] = t.tp end
  for _, view in ipairs({{'pch', table.concat(channels, '>')}, {'ptp', table.concat(points, '>')}}) do
    local key = day_key(day, segment .. ':' .. view[1])
    redis.call('HINCRBY', key, 'n|' .. view[2], 1)
    if converted then
      redis.call('HINCRBY', key, 'c|' .. view[2], 1)
      redis.call('HINCRBYFLOAT', key, 'r|' .. view[2], revenue)
    end
  end
end

local function close_journey(subject, segment)
  local touches = read_touches(subject)
  if #touches > 0 then
    count_path(touches[#touches].day, segment, touches, false, 0)
  end
  redis.call('DEL', customer_key(subject, 'tx'))
  redis.call('ZREM', P .. ':open', subject)
end
