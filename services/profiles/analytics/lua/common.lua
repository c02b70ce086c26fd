-- Shared by the analytics scripts. Key names mirror services/profiles/analytics/keys.py.
-- Every script gets the key prefix (`<namespace>:an`) as ARGV[1].
local P = ARGV[1]
local MAX_PATH = 8       -- touches kept per open journey (attribution paths)
local MAX_DEPTH = 6      -- Sankey columns
local SEEN_KEEP = 512    -- event ids remembered per customer for redelivery
-- Upper bounds (seconds) of the wait buckets of the funnel; the last bucket is open.
local WAIT_BOUNDS = {3600, 21600, 86400, 259200, 604800, 1209600, 2592000, 7776000}
local SEGMENTS = {'prospect', 'first_time_buyer', 'repeat_buyer'}

-- Aggregate increments are summed in these tables while a script runs and written once by
-- flush(): a batch that touches the same counter a hundred times writes it once. Nothing
-- reads the aggregates inside a script, so the result is that of writing them one by one.
local PENDING_INT, PENDING_FLOAT, PENDING_MEMBERS = {}, {}, {}

local function pending(tables, key)
  local fields = tables[key]
  if not fields then fields = {}; tables[key] = fields end
  return fields
end
local function add_int(key, field, n)
  local fields = pending(PENDING_INT, key)
  fields[field] = (fields[field] or 0) + n
end
local function add_float(key, field, x)
  local fields = pending(PENDING_FLOAT, key)
  fields[field] = (fields[field] or 0) + x
end
local function add_member(key, member) pending(PENDING_MEMBERS, key)[member] = true end

local function flush()
  for key, fields in pairs(PENDING_INT) do
    for field, n in pairs(fields) do redis.call('HINCRBY', key, field, n) end
  end
  for key, fields in pairs(PENDING_FLOAT) do
    for field, x in pairs(fields) do redis.call('HINCRBYFLOAT', key, field, x) end
  end
  for key, members in pairs(PENDING_MEMBERS) do
    local chunk = {}
    for member in pairs(members) do
      chunk[#chunk + 1] = member
      if #chunk == 500 then redis.call('PFADD', key, unpack(chunk)); chunk = {} end
    end
    if #chunk > 0 then redis.call('PFADD', key, unpack(chunk)) end
  end
  PENDING_INT, PENDING_FLOAT, PENDING_MEMBERS = {}, {}, {}
end

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

-- 'YYYY-MM-DD' (UTC) of a time in ms: the inverse of epoch_days (H. Hinnant's algorithm).
local function utc_day(at)
  local z = math.floor(at / 86400000) + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
                          - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02d', y, m, d)
end

-- Days since 1970-01-01 of a 'YYYY-MM-DD' date (proleptic Gregorian, H. Hinnant's algorithm).
local function epoch_days(day)
  local y, m, d = tonumber(day:sub(1, 4)), tonumber(day:sub(6, 7)), tonumber(day:sub(9, 10))
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  return era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468
end

-- A customer's state is one msgpack string at `:c:<subject>:st`: STATE_VERSION, the fields,
-- the dedupe ring and the touches of the open journey in the order they came. Fields (each
-- absent until set; times in ms):
--   p       purchases                   a       time of the latest event in time order
--   f, ft   funnel stage, time reached  fc, fd  first channel, cohort (day of the first event)
--   pl, pd  last phase, its Sankey column (0..MAX_DEPTH); sl, sd the same for the journey step
--   b       1 once a purchase came in time order
--   ld, lt  day and touchpoint|channel of a non-buyer's latest event (drop-out)
-- Fields no script reads any more are not stored: ft, fc and fd at the last stage, ld and lt
-- once bought, the last phase (step) once its column is MAX_DEPTH. Stored, days are days since
-- 1970-01-01 and phases and steps one-letter codes; scripts see 'YYYY-MM-DD' and the names.
-- A touch is "<at ms in base 36>|touchpoint|channel|phase|segment", phase and segment as codes.
local STATE_VERSION = 2  -- 1: the same with 8-byte ids in the ring
local DAY_MS = 86400000
local PHASE_CODES = {pre_purchase = 'a', purchase = 'b', post_purchase = 'c'}
local SEGMENT_CODES = {prospect = 'p', first_time_buyer = 'f', repeat_buyer = 'r'}
local STEP_CODES = {need_recognition = 'n', research = 'r', discovery = 'd', contact = 'c',
                    purchase = 'p', after_sales = 's', loyalty = 'l'}
local function decoder(codes)
  local back = {}
  for name, code in pairs(codes) do back[code] = name end
  return back
end
local PHASE_NAMES, SEGMENT_NAMES = decoder(PHASE_CODES), decoder(SEGMENT_CODES)
local STEP_NAMES = decoder(STEP_CODES)

-- A day as a number where that gives the same text back.
local function day_number(day)
  if type(day) == 'string' and day:match('^%d%d%d%d%-%d%d%-%d%d$') then
    local n = epoch_days(day)
    if utc_day(n * DAY_MS) == day then return n end
  end
  return day
end
local function day_text(n)
  if type(n) == 'number' then return utc_day(n * DAY_MS) end
  return n
end
local function coder(codes, names)
  return {function(name) return codes[name] or name end,
          function(code) return names[code] or code end}
end
-- Fields stored in another form than scripts use: {to stored, from stored}.
local STORED_AS = {pl = coder(PHASE_CODES, PHASE_NAMES), sl = coder(STEP_CODES, STEP_NAMES),
                   fd = {day_number, day_text}, ld = {day_number, day_text}}

local function forget_unread(s)
  if s.f == 3 then s.ft, s.fc, s.fd = nil, nil, nil end
  if s.b == 1 then s.ld, s.lt = nil, nil end
  if s.pd and s.pd >= MAX_DEPTH then s.pl, s.pd = nil, MAX_DEPTH end
  if s.sd and s.sd >= MAX_DEPTH then s.sl, s.sd = nil, MAX_DEPTH end
  return s
end

local function stored_fields(s)
  local out = {}
  for name, value in pairs(s) do
    local form = STORED_AS[name]
    out[name] = form and form[1](value) or value
  end
  return forget_unread(out)
end

local function script_fields(stored)
  for name, form in pairs(STORED_AS) do
    if stored[name] ~= nil then stored[name] = form[2](stored[name]) end
  end
  return stored
end

-- Earlier versions kept the fields under long names, every value a string.
local EARLIER_NAMES = {p = 'p', at = 'a', stg = 'f', sat = 'ft', fch = 'fc', coh = 'fd',
                       lphase = 'pl', dphase = 'pd', ljourney_step = 'sl', djourney_step = 'sd',
                       lday = 'ld', ltp = 'lt'}
local NUMBERS = {p = true, a = true, f = true, ft = true, pd = true, sd = true}

local function upgrade_fields(earlier)
  local s = {}
  for name, value in pairs(earlier) do
    local short = EARLIER_NAMES[name]
    if short then s[short] = NUMBERS[short] and tonumber(value) or value end
  end
  if earlier.buy == '1' then s.b = 1 end
  return forget_unread(s)
end

local DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz'
-- A whole number in base 36 (a time in ms has 8 digits until 2059).
local function base36(n)
  if n < 0 then return '-' .. base36(-n) end
  local out = {}
  repeat
    local d = n % 36
    out[#out + 1] = DIGITS:sub(d + 1, d + 1)
    n = (n - d) / 36
  until n == 0
  return string.reverse(table.concat(out))
end

local function unbase36(text)
  if text:sub(1, 1) == '-' then return -tonumber(text:sub(2), 36) end
  return tonumber(text, 36)
end

-- `day` is kept (a sixth field) only where it is not the UTC day of `at`.
local function touch_entry(at, tp, ch, ph, seg, day)
  local f = {base36(at), tp, ch, PHASE_CODES[ph] or ph, SEGMENT_CODES[seg] or seg}
  if day and day ~= utc_day(at) then f[6] = day end
  return table.concat(f, '|')
end

-- Earlier versions wrote the time in base 10 (`base`); the oldest always added the day.
local function parse_touch(entry, base)
  local f = split(entry, '|')
  local at = base == 10 and tonumber(f[1]) or unbase36(f[1])
  return {at = at, tp = f[2], ch = f[3], ph = PHASE_NAMES[f[4]] or f[4],
          seg = SEGMENT_NAMES[f[5]] or f[5], day = f[6] or utc_day(at)}
end

local function upgrade_touches(entries)
  local out = {}
  for i, entry in ipairs(entries) do
    local t = parse_touch(entry, 10)
    out[i] = touch_entry(t.at, t.tp, t.ch, t.ph, t.seg, t.day)
  end
  return out
end

local function sorted_touches(entries)
  local touches = {}
  for i, entry in ipairs(entries) do touches[i] = parse_touch(entry) end
  table.sort(touches, function(a, b) return a.at < b.at end)
  return touches
end

local LEGACY_KEYS = {'s', 'ids', 'tx'}

-- The state of one customer, from its key or, before that existed, from the hash, id ring
-- and touch list of earlier versions (deleted when the state is saved). `empty`: none of them.
-- A state of an earlier layout is read into the current one and so saved.
local function load_customer(subject)
  local packed = redis.call('GET', customer_key(subject, 'st'))
  if packed then
    local parts = {cmsgpack.unpack(packed)}
    if parts[1] == STATE_VERSION then
      return {s = script_fields(parts[2]), ids = parts[3], tx = parts[4]}
    end
    if parts[1] == 1 then
      return {s = script_fields(parts[2]), ids = ring_narrowed(parts[3]), tx = parts[4]}
    end
    -- Before the version: fields, ring, touches.
    return {s = upgrade_fields(parts[1]), ids = ring_narrowed(parts[2]),
            tx = upgrade_touches(parts[3])}
  end
  local c = {s = {}, ids = '', tx = {}}
  local legacy = {}
  for i, name in ipairs(LEGACY_KEYS) do legacy[i] = customer_key(subject, name) end
  if redis.call('EXISTS', unpack(legacy)) == 0 then
    c.empty = true
    return c
  end
  c.legacy = true
  local raw, fields = redis.call('HGETALL', legacy[1]), {}
  for i = 1, #raw, 2 do fields[raw[i]] = raw[i + 1] end
  c.s = upgrade_fields(fields)
  c.ids = ring_narrowed(redis.call('GET', legacy[2]))
  c.tx = upgrade_touches(redis.call('LRANGE', legacy[3], 0, -1))
  return c
end

local function save_customer(subject, c, ttl)
  redis.call('SET', customer_key(subject, 'st'), cmsgpack.pack(
    STATE_VERSION, stored_fields(c.s), ring_trim(c.ids, SEEN_KEEP), c.tx), 'EX', ttl)
  if c.legacy then
    for _, name in ipairs(LEGACY_KEYS) do redis.call('DEL', customer_key(subject, name)) end
    c.legacy = false
  end
end

-- Share of each touch under a rule-based model (touches 1..n).
local function rule_weights(model, n)
  local w = {}
  for i = 1, n do
    if model == 'first_touch' then w[i] = (i == 1) and 1 or 0
    elseif model == 'last_touch' then w[i] = (i == n) and 1 or 0
    elseif model == 'linear' then w[i] = 1 / n
    elseif n == 1 then w[i] = 1
    elseif n == 2 then w[i] = 0.5
    elseif i == 1 or i == n then w[i] = 0.4
    else w[i] = 0.2 / (n - 2) end
  end
  return w
end

-- The day, its week (Monday-based, numbered from the week of 1970-01-01) and its month: a
-- range query reads whole months and weeks where it can and single days only at its edges.
local function rollups(day)
  return {day, 'w' .. math.floor((epoch_days(day) + 3) / 7), day:sub(1, 7)}
end

-- Attribution sums of one bucket, segment and view are spread over ATT_SHARDS small hashes
-- (`...:att:<view>:<shard>`): a small hash stays in Redis's compact encoding, several times
-- smaller than one large hash of the same fields. The shard is a cheap function of the field.
local ATT_SHARDS = 8
local function att_shard(field)
  local n = #field
  return (n + 7 * field:byte(n - 2) + 3 * field:byte(math.floor(n / 2) + 1)
          + field:byte(n - 3)) % ATT_SHARDS
end

-- Names in a coalition field are written as short codes, assigned in order of first use and
-- kept in the `:names` hash (name -> code), so a field holds `3,a,1f` instead of the names.
local NAME_CODES = {}
local function name_code(name)
  local code = NAME_CODES[name]
  if code then return code end
  local names = P .. ':names'
  code = redis.call('HGET', names, name)
  if not code then
    code = base36(redis.call('HLEN', names))
    redis.call('HSET', names, name, code)
  end
  NAME_CODES[name] = code
  return code
end

-- One finished journey into the attribution aggregates of its day, week and month, for both
-- views (channel, touchpoint): totals, Markov transitions and end states, the Shapley
-- coalition (the set of keys touched) and, when it converted, the credit of every rule-based
-- and time-decay model.
local function count_journey(day, segment, touches, converted, revenue, half_life)
  local buckets = rollups(day)
  for _, view in ipairs({'ch', 'tp'}) do
    local v = view .. '|'
    local counts, amounts = {}, {}
    local function count(field, n) counts[field] = (counts[field] or 0) + n end
    local function amount(field, x) amounts[field] = (amounts[field] or 0) + x end
    local names = {}
    for i, t in ipairs(touches) do names[i] = t[view] end
    count(v .. 'jn', 1)
    local previous = '^'
    for _, name in ipairs(names) do
      count(v .. 't|' .. previous .. '>' .. name, 1)
      previous = name
    end
    count(v .. 'e|' .. previous .. '|' .. (converted and 'c' or 'n'), 1)
    local set, seen = {}, {}
    for _, name in ipairs(names) do
      if not seen[name] then seen[name] = true; set[#set + 1] = name end
    end
    for i, name in ipairs(set) do set[i] = name_code(name) end
    table.sort(set)
    local coalition = v .. 'k|' .. table.concat(set, ',')
    count(coalition .. '|n', 1)
    if converted then
      count(v .. 'jc', 1)
      amount(v .. 'jr', revenue)
      count(coalition .. '|c', 1)
      amount(coalition .. '|r', revenue)
      local n = #names
      local models = {}
      for _, model in ipairs({'first_touch', 'last_touch', 'linear', 'position_based'}) do
        models[model] = rule_weights(model, n)
      end
      local decay, total = {}, 0
      for i, t in ipairs(touches) do
        decay[i] = 2 ^ (-(touches[n].at - t.at) / half_life)
        total = total + decay[i]
      end
      for i = 1, n do decay[i] = decay[i] / total end
      models['time_decay'] = decay
      for model, weights in pairs(models) do
        local credit = {}
        for i, name in ipairs(names) do credit[name] = (credit[name] or 0) + weights[i] end
        for name, share in pairs(credit) do
          if share > 0 then
            local field = v .. 'm|' .. model .. '|' .. name
            amount(field .. '|c', share)
            amount(field .. '|r', share * revenue)
          end
        end
      end
    end
    local base = {}
    for i, bucket in ipairs(buckets) do
      base[i] = day_key(bucket, segment .. ':att:' .. view .. ':')
    end
    for field, n in pairs(counts) do
      local shard = att_shard(field)
      for _, key in ipairs(base) do add_int(key .. shard, field, n) end
    end
    for field, x in pairs(amounts) do
      local shard = att_shard(field)
      for _, key in ipairs(base) do add_float(key .. shard, field, x) end
    end
  end
end

-- The open journey ended without a purchase: a non-converted path on the day of its last touch.
local function close_journey(subject, c, segment)
  local touches = sorted_touches(c.tx)
  if #touches > 0 then
    count_journey(touches[#touches].day, segment, touches, false, 0, 1)
  end
  c.tx = {}
  redis.call('ZREM', P .. ':open', subject)
end
