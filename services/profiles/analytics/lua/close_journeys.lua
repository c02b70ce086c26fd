-- Closes journeys whose last touch is older than the cutoff: they ended without a purchase
-- within the window, and count as non-converted paths on the day of their last touch.
-- ARGV: prefix, cutoff ms, limit, customer ttl s. Returns the number closed.
local cutoff, limit, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local quiet = redis.call('ZRANGEBYSCORE', P .. ':open', '-inf', '(' .. cutoff, 'LIMIT', 0, limit)
for _, subject in ipairs(quiet) do
  local c = load_customer(subject)
  if c.empty then  -- the state expired: nothing left to count
    redis.call('ZREM', P .. ':open', subject)
  else
    close_journey(subject, c, segment_of(c.s.p or 0))
    save_customer(subject, c, ttl)
  end
end
flush()
return #quiet
