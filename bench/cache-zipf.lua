-- wrk script for bench/cache-load: GET /z/K with K drawn from a Zipf distribution (exponent
-- ZIPF_S, default 1.0) over ZIPF_N keys (default 10000), the same sequence every run.
local n = tonumber(os.getenv("ZIPF_N") or "10000")
local s = tonumber(os.getenv("ZIPF_S") or "1.0")
local cdf = {}

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  local total = 0
  for k = 1, n do
    total = total + 1 / (k ^ s)
    cdf[k] = total
  end
  for k = 1, n do
    cdf[k] = cdf[k] / total
  end
  math.randomseed(seed or 1)
end

local function draw()
  local u = math.random()
  local lo, hi = 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

function request()
  return wrk.format("GET", "/z/" .. draw())
end
