-- Shared wrk script for `make bench`. Environment:
--   BENCH_MODE   get | list | create | mix | path
--   BENCH_POSTS  highest demo post id (every tenth id is a draft)
--   BENCH_TOKEN  bearer token for writes
--   BENCH_PATH   fixed path for mode "path"
-- Prints one JSON line at the end: requests, seconds, latency percentiles (µs),
-- socket errors, non-2xx and 5xx counts.

local mode = os.getenv("BENCH_MODE") or "get"
local posts = tonumber(os.getenv("BENCH_POSTS") or "100000")
local token = os.getenv("BENCH_TOKEN") or ""
local fixed = os.getenv("BENCH_PATH") or "/posts"
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(1000 + id)
  non2xx = 0
  server_errors = 0
  counter = 0
end

local function public_id()
  local n = math.random(1, posts)
  if n % 10 == 0 then n = n - 1 end
  return n
end

local function create()
  counter = counter + 1
  local body = '{"title":"bench ' .. id .. '-' .. counter .. '","content":"'
    .. string.rep("load ", 40) .. '","publishedAt":"2026-01-01T00:00:00Z"}'
  return wrk.format("POST", "/posts", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

function request()
  if mode == "create" then
    return create()
  elseif mode == "mix" then
    if math.random(1, 10) == 1 then return create() end
    return wrk.format("GET", "/posts/" .. public_id())
  elseif mode == "list" then
    return wrk.format("GET", "/posts?limit=20")
  elseif mode == "path" then
    return wrk.format("GET", fixed)
  end
  return wrk.format("GET", "/posts/" .. public_id())
end

function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
  if status >= 500 then server_errors = server_errors + 1 end
end

function done(summary, latency, requests)
  local non2xx_total, server_total = 0, 0
  for _, t in ipairs(threads) do
    non2xx_total = non2xx_total + (t:get("non2xx") or 0)
    server_total = server_total + (t:get("server_errors") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"seconds":%.3f,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
      .. '"socket_errors":%d,"non2xx":%d,"server_errors":%d}\n',
    summary.requests, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, non2xx_total, server_total))
end
