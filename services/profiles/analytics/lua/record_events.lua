-- Folds a batch of touchpoint events into the analytics aggregates, each once per event id,
-- in order, as if the events came one by one: counters are summed and written at the end
-- (flush), and each customer's state is read once and written once.
-- ARGV: prefix, window ms, customer ttl s, half-life ms, processing time s, then per event
--       EVENT_FIELDS values: event id, subject, at ms, day, touchpoint, channel, phase,
--       journey step, purchase (0/1), value, rating ('' = none), decision id ('' = none),
--       responds (0/1), touch (0/1), dedupe id (6 bytes)
-- Returns how many events were applied (the rest were duplicates).
local EVENT_FIELDS = 15
local window, ttl, half_life, now_s = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]

local customers, touched, watermark = {}, {}, 0

-- Each customer's state is read once per script and written once at the end.
local function customer_of(subject)
  local c = customers[subject]
  if not c then
    c = load_customer(subject)
    c.legacy_seen = redis.call('EXISTS', customer_key(subject, 'seen')) == 1
    customers[subject] = c
  end
  return c
end

-- Ids remembered before the ring existed are in a sorted set (`seen`) until it expires.
local function seen_before(subject, c, event_id, dedupe)
  if ring_has(c.ids, dedupe) then return true end
  if c.legacy_seen and redis.call('ZSCORE', customer_key(subject, 'seen'), event_id) then
    return true
  end
  c.ids = c.ids .. dedupe
  return false
end

-- Answers to our recommendations.
local function respond(id)
  local dkey = P .. ':dec:' .. id
  local head = redis.call('HGET', dkey, 'k')
  if not head then return nil end
  if redis.call('HSETNX', dkey, 'r', 1) == 1 then
    add_int(day_key(redis.call('HGET', dkey, 'day'), 'rec'), head .. '|r', 1)
  end
  return dkey, head
end

local function record(base)
  local event_id, subject, at, day = ARGV[base], ARGV[base + 1], tonumber(ARGV[base + 2]), ARGV[base + 3]
  local tp, ch, ph, step = ARGV[base + 4], ARGV[base + 5], ARGV[base + 6], ARGV[base + 7]
  local is_purchase, value = ARGV[base + 8] == '1', tonumber(ARGV[base + 9]) or 0
  local rating, decision_id, responds = ARGV[base + 10], ARGV[base + 11], ARGV[base + 12] == '1'
  local is_touch, dedupe = ARGV[base + 13] == '1', ARGV[base + 14]

  local c = customer_of(subject)
  if seen_before(subject, c, event_id, dedupe) then return 0 end
  touched[subject] = true

  local s = c.s
  local purchases = s.p or 0
  local segment = segment_of(purchases)
  local dim = tp .. '|' .. ch .. '|' .. ph .. '|' .. segment
  local stats = day_key(day, 'tp')
  local in_order = at >= (s.a or 0)

  -- Touchpoint effectiveness.
  add_int(stats, dim .. '|e', 1)
  add_member(day_key(day, 'u:' .. dim), subject)
  if rating ~= '' then
    add_int(stats, dim .. '|rn', 1)
    add_int(stats, dim .. '|rs', tonumber(rating))
  end
  if decision_id ~= '' and responds then respond(decision_id) end

  -- Journey flows for the Sankey: a new column whenever the phase (or step) changes. Columns
  -- from MAX_DEPTH on are not counted, so the depth stops there.
  local function flow(facet, val, last_field, depth_field)
    local last, depth = s[last_field], s[depth_field] or -1
    if depth >= MAX_DEPTH or last == val then return end
    depth = depth + 1
    s[last_field], s[depth_field] = val, depth
    if depth >= MAX_DEPTH then return end
    local key = day_key(day, segment .. ':flow')
    add_int(key, facet .. '|n|' .. depth .. ':' .. val, 1)
    if depth > 0 then
      add_int(key, facet .. '|l|' .. (depth - 1) .. ':' .. last .. '>' .. depth .. ':' .. val, 1)
    end
  end
  if in_order then
    flow('phase', ph, 'pl', 'pd')
    flow('journey_step', step, 'sl', 'sd')
  end

  -- Funnel by cohort (day of the first event) and first channel.
  local function reach_stage(stage)
    local fkey = day_key(s.fd, 'funnel')
    local field = s.fc .. '|' .. stage
    add_int(fkey, field .. '|n', 1)
    if stage > 0 then
      local wait = math.max(at - s.ft, 0) / 1000
      local bucket = #WAIT_BOUNDS
      for i, bound in ipairs(WAIT_BOUNDS) do
        if wait <= bound then bucket = i - 1; break end
      end
      add_int(fkey, field .. '|w' .. bucket, 1)
      add_float(fkey, field .. '|ws', wait)
    end
    s.f, s.ft = stage, at
  end
  local entered_now = false
  if not s.f then
    s.fd, s.fc = day, ch
    reach_stage(0)
    entered_now = true
  end
  local stage = s.f
  local purchases_after = purchases + (is_purchase and 1 or 0)
  if stage == 0 and is_purchase then
    reach_stage(1)
  elseif stage == 1 and not entered_now and ph == 'post_purchase' then
    reach_stage(2)
  elseif stage == 2 and (step == 'loyalty' or purchases_after >= 2) then
    reach_stage(3)
  end

  -- Drop-out: every non-buyer is counted once, under the day and touchpoint of their last event.
  if s.b ~= 1 and in_order then
    if s.ld then add_int(day_key(s.ld, 'drop'), s.lt, -1) end
    if is_purchase then
      s.b = 1
    else
      s.ld, s.lt = day, tp .. '|' .. ch
      add_int(day_key(day, 'drop'), s.lt, 1)
    end
  end

  local last = c.tx[#c.tx]
  -- A journey quiet for longer than the window ended before this touch or purchase.
  if (is_purchase or is_touch) and last and parse_touch(last).at < at - window then
    close_journey(subject, c, segment)
  end
  if is_purchase then
    -- Conversions within the window after each touch, revenue split equally over them.
    local touches = sorted_touches(c.tx)
    local in_window = {}
    for _, t in ipairs(touches) do
      if t.at <= at and t.at >= at - window then in_window[#in_window + 1] = t end
    end
    for _, t in ipairs(in_window) do
      local tdim = t.tp .. '|' .. t.ch .. '|' .. t.ph .. '|' .. t.seg
      add_int(day_key(t.day, 'tp'), tdim .. '|c', 1)
      add_float(day_key(t.day, 'tp'), tdim .. '|ar', value / #in_window)
    end
    add_int(stats, dim .. '|p', 1)
    add_float(stats, dim .. '|r', value)
    local pp = day_key(day, 'purchases')
    add_int(pp, segment .. '|n', 1)
    add_int(pp, segment .. '|t', #in_window)
    add_float(pp, segment .. '|r', value)
    -- The journey since the last purchase converts.
    if #touches > 0 then count_journey(day, segment, touches, true, value, half_life) end
    c.tx = {}
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
        add_float(rkey, head .. '|v', value)
        add_float(rkey, head .. '|v2', after * after - before * before)
      end
    end
    s.p = purchases_after
  elseif is_touch then
    c.tx[#c.tx + 1] = touch_entry(at, tp, ch, ph, segment)
    if #c.tx > MAX_PATH then table.remove(c.tx, 1) end
    redis.call('ZADD', P .. ':open', 'GT', at, subject)
  end

  if in_order then s.a = at end
  if at > watermark then watermark = at end
  return 1
end

local applied = 0
for base = 6, #ARGV, EVENT_FIELDS do applied = applied + record(base) end
if applied == 0 then return 0 end

local rate_key = P .. ':rate:' .. now_s
redis.call('INCRBY', rate_key, applied)
redis.call('EXPIRE', rate_key, 3600)
for subject in pairs(touched) do save_customer(subject, customers[subject], ttl) end
flush()
local wm = P .. ':watermark'
if watermark > tonumber(redis.call('GET', wm) or '0') then redis.call('SET', wm, watermark) end
return applied
