-- Closes journeys whose last touch is older than the cutoff: they ended without a purchase
-- within the window, and count as non-converted paths on the day of their last touch.
-- ARGV: prefix, cutoff ms, limit. Returns the number closed.
local cutoff, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local quiet = redis.call('ZRANGEBYSCORE', P .. ':open', '-inf', '(' .. cutoff, 'LIMIT', 0, limit)
for _, subject in ipairs(quiet) do
  local segment = redis.call('HGET', customer_key(subject, 's'), 'seg') or 'prospect'
  close_journey(subject, segment)
end
flush()
return #quiet
