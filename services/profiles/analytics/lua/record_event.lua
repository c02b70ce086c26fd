-- Folds one touchpoint event into the analytics aggregates, once per event id.
-- ARGV: prefix, event id, subject, at ms, day, touchpoint, channel, phase, journey step,
--       purchase (0/1), value, rating ('' = none), decision id ('' = none), responds (0/1),
--       window ms, customer ttl s, half-life ms, processing time s, touch (0/1)
-- Returns 1 when applied, 0 for a duplicate.
local subject, at, day = ARGV[3], tonumber(ARGV[4]), ARGV[5]
local tp, ch, ph, step = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local is_purchase, value = ARGV[10] == '1', tonumber(ARGV[11]) or 0
local rating, decision_id, responds = ARGV[12], ARGV[13], ARGV[14] == '1'
local window, ttl, half_life, now_s = tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17]), ARGV[18]
local is_touch = ARGV[19] == '1'

local seen = customer_key(subject, 'seen')
if redis.call('ZADD', seen, 'NX', at, ARGV[2]) == 0 then return 0 end
if redis.call('ZCARD', seen) > SEEN_KEEP then
  redis.call('ZREMRANGEBYRANK', seen, 0, -SEEN_KEEP - 1)
end

local state_key = customer_key(subject, 's')
local s = {}
local raw = redis.call('HGETALL', state_key)
for i = 1, #raw, 2 do s[raw[i]] = raw[i + 1] end
local purchases = tonumber(s.p or '0')
local segment = segment_of(purchases)
local dim = tp .. '|' .. ch .. '|' .. ph .. '|' .. segment
local stats = day_key(day, 'tp')
local in_order = at >= tonumber(s.at or '0')

-- Live event rate, by processing second.
local rate_key = P .. ':rate:' .. now_s
redis.call('INCR', rate_key)
redis.call('EXPIRE', rate_key, 3600)

-- Touchpoint effectiveness.
redis.call('HINCRBY', stats, dim .. '|e', 1)
redis.call('PFADD', day_key(day, 'u:' .. dim), subject)
if rating ~= '' then
  redis.call('HINCRBY', stats, dim .. '|rn', 1)
  redis.call('HINCRBY', stats, dim .. '|rs', tonumber(rating))
end

-- Answers to our recommendations.
local function respond(id)
  local dkey = P .. ':dec:' .. id
  local head = redis.call('HGET', dkey, 'k')
  if not head then return nil end
  if redis.call('HSETNX', dkey, 'r', 1) == 1 then
    redis.call('HINCRBY', day_key(redis.call('HGET', dkey, 'day'), 'rec'), head .. '|r', 1)
  end
  return dkey, head
end
if decision_id ~= '' and responds then respond(decision_id) end

-- Journey flows for the Sankey: a new column whenever the phase (or step) changes.
local function flow(facet, val)
  local last, depth = s['l' .. facet], tonumber(s['d' .. facet] or '-1')
  if last == val then return end
  depth = depth + 1
  s['l' .. facet], s['d' .. facet] = val, tostring(depth)
  if depth >= MAX_DEPTH then return end
  local key = day_key(day, segment .. ':flow')
  redis.call('HINCRBY', key, facet .. '|n|' .. depth .. ':' .. val, 1)
  if depth > 0 then
    redis.call('HINCRBY', key, facet .. '|l|' .. (depth - 1) .. ':' .. last .. '>' .. depth .. ':' .. val, 1)
  end
end
if in_order then
  flow('phase', ph)
  flow('journey_step', step)
end

-- Funnel by cohort (day of the first event) and first channel.
local function reach_stage(stage)
  local fkey = day_key(s.coh, 'funnel')
  local field = s.fch .. '|' .. stage
  redis.call('HINCRBY', fkey, field .. '|n', 1)
  if stage > 0 then
    local wait = math.max(at - tonumber(s.sat), 0) / 1000
    local bucket = #WAIT_BOUNDS
    for i, bound in ipairs(WAIT_BOUNDS) do
      if wait <= bound then bucket = i - 1; break end
    end
    redis.call('HINCRBY', fkey, field .. '|w' .. bucket, 1)
    redis.call('HINCRBYFLOAT', fkey, field .. '|ws', wait)
  end
  s.stg, s.sat = tostring(stage), tostring(at)
end
local entered_now = false
if not s.stg then
  s.coh, s.fch = day, ch
  reach_stage(0)
  entered_now = true
end
local stage = tonumber(s.stg)
local purchases_after = purchases + (is_purchase and 1 or 0)
if stage == 0 and is_purchase then
  reach_stage(1)
elseif stage == 1 and not entered_now and ph == 'post_purchase' then
  reach_stage(2)
elseif stage == 2 and (step == 'loyalty' or purchases_after >= 2) then
  reach_stage(3)
end

-- Drop-out: every non-buyer is counted once, under the day and touchpoint of their last event.
if s.buy ~= '1' and in_order then
  if s.lday then redis.call('HINCRBY', day_key(s.lday, 'drop'), s.ltp, -1) end
  if is_purchase then
    s.buy = '1'
  else
    s.lday, s.ltp = day, tp .. '|' .. ch
    redis.call('HINCRBY', day_key(day, 'drop'), s.ltp, 1)
  end
end

if is_purchase then
  -- A journey quiet for longer than the window ended before this purchase.
  local last = redis.call('LINDEX', customer_key(subject, 'tx'), -1)
  if last and parse_touch(last).at < at - window then close_journey(subject, segment) end
  -- Conversions within the window after each touch, revenue split equally over them.
  local touches = read_touches(subject)
  local in_window = {}
  for _, t in ipairs(touches) do
    if t.at <= at and t.at >= at - window then in_window[#in_window + 1] = t end
  end
  for _, t in ipairs(in_window) do
    local tdim = t.tp .. '|' .. t.ch .. '|' .. t.ph .. '|' .. t.seg
    redis.call('HINCRBY', day_key(t.day, 'tp'), tdim .. '|c', 1)
    redis.call('HINCRBYFLOAT', day_key(t.day, 'tp'), tdim .. '|ar', value / #in_window)
  end
  redis.call('HINCRBY', stats, dim .. '|p', 1)
  redis.call('HINCRBYFLOAT', stats, dim .. '|r', value)
  local pp = day_key(day, 'purchases')
  redis.call('HINCRBY', pp, segment .. '|n', 1)
  redis.call('HINCRBY', pp, segment .. '|t', #in_window)
  redis.call('HINCRBYFLOAT', pp, segment .. '|r', value)
  -- The journey since the last purchase converts.
  if #touches > 0 then count_journey(day, segment, touches, true, value, half_life) end
  redis.call('DEL', customer_key(subject, 'tx'))
  redis.call('ZREM', P .. ':open', subject)
  -- Outcomes of every decision for this customer within the window before the purchase.
  local dlist = customer_key(subject, 'dec')
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', dlist, at - window, at)) do
    local dkey, head = respond(id)
    if dkey then
      local before = tonumber(redis.call('HGET', dkey, 'v') or '0')
      local after = before + value
      redis.call('HSET', dkey, 'v', after)
      local rkey = day_key(redis.call('HGET', dkey, 'day'), 'rec')
      redis.call('HINCRBYFLOAT', rkey, head .. '|v', value)
      redis.call('HINCRBYFLOAT', rkey, head .. '|v2', after * after - before * before)
    end
  end
  s.p = tostring(purchases_after)
elseif is_touch then
  local tx = customer_key(subject, 'tx')
  local last = redis.call('LINDEX', tx, -1)
  if last and parse_touch(last).at < at - window then close_journey(subject, segment) end
  redis.call('RPUSH', tx, string.format('%013d', at) .. '|' .. tp .. '|' .. ch .. '|' .. ph .. '|' .. segment .. '|' .. day)
  redis.call('LTRIM', tx, -MAX_PATH, -1)
  redis.call('EXPIRE', tx, ttl)
  local open = P .. ':open'
  local previous = tonumber(redis.call('ZSCORE', open, subject) or '0')
  if at > previous then redis.call('ZADD', open, at, subject) end
end

if in_order then s.at = tostring(at) end
s.seg = segment_of(tonumber(s.p or '0'))
local flat = {}
for k, v in pairs(s) do flat[#flat + 1] = k; flat[#flat + 1] = v end
redis.call('HSET', state_key, unpack(flat))
redis.call('EXPIRE', state_key, ttl)
redis.call('EXPIRE', seen, ttl)
local wm = P .. ':watermark'
if at > tonumber(redis.call('GET', wm) or '0') then redis.call('SET', wm, at) end
return 1
