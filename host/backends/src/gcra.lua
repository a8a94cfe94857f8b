-- Sluice rate limits: GCRA over several buckets at once, all or nothing, on Redis's clock.
-- KEYS[i]: the bucket of limit i (its value: the theoretical arrival time, in µs since the epoch).
-- ARGV[1]: the request's cost in units.
-- ARGV[2i], ARGV[2i+1]: limit i's emission interval and tolerance (burst * interval), in µs.
-- Returns {allowed (1/0), retry_after_us, then per limit: remaining units, µs until full}.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local cost = tonumber(ARGV[1])
local tats = {}
local retry = 0
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  tats[i] = tat
  local wait = tat + cost * interval - tolerance - now
  if wait > retry then retry = wait end
end
local allowed = retry <= 0
local out = {allowed and 1 or 0, math.ceil(retry)}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i])
  local tolerance = tonumber(ARGV[2 * i + 1])
  local tat = tats[i]
  if allowed then
    tat = tat + cost * interval
    redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
  end
  local remaining = math.floor((tolerance - (tat - now)) / interval)
  if remaining < 0 then remaining = 0 end
  out[#out + 1] = remaining
  out[#out + 1] = math.ceil(tat - now)
end
return out
