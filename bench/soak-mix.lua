-- The soak's request mix over the embedded default config's routes (bench/soak):
-- 40% cache hits (/cached, fresh for a minute), 20% authenticated requests with compression
-- (/private/hello with the demo key), 15% coalesced slow answers (/slow?ms=20 on 50 targets),
-- 10% echoes with a body (POST /echo), 10% small JSON (/hello), 5% 404s (/status/404).
local key = os.getenv("SOAK_KEY") or ""
local counter = 0
request = function()
  counter = counter + 1
  local r = math.random(100)
  if r <= 40 then
    return wrk.format("GET", "/cached")
  elseif r <= 60 then
    return wrk.format("GET", "/private/hello", { ["x-api-key"] = key, ["accept-encoding"] = "gzip" })
  elseif r <= 75 then
    return wrk.format("GET", "/slow?ms=20&n=" .. (counter % 50))
  elseif r <= 85 then
    return wrk.format("POST", "/echo", { ["content-type"] = "application/json" }, '{"soak": true}')
  elseif r <= 95 then
    return wrk.format("GET", "/hello")
  end
  return wrk.format("GET", "/status/404")
end
