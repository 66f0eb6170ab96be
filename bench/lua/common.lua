-- Shared by every scenario: per-thread status counts, optional think time, JSON summary.
-- wrk loads a script once per thread (its own Lua state) and once more for setup()/done().
local M = {}

local threads = {}

M.delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0

function M.setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

-- Per-thread globals, read back in done() through thread:get().
statuses = {}
thread_id = 0

function M.count(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function M.lines(path)
  local out = {}
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    if #line > 0 then table.insert(out, line) end
  end
  f:close()
  return out
end

local function encode(v)
  local t = type(v)
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return string.format("%.17g", v)
  elseif t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
  elseif t == "table" then
    local parts = {}
    for k, val in pairs(v) do
      table.insert(parts, encode(tostring(k)) .. ":" .. encode(val))
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return "null"
end

function M.done(summary, latency, requests)
  local codes = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses") or {}
    for k, v in pairs(s) do
      codes[tostring(k)] = (codes[tostring(k)] or 0) + v
    end
  end
  local pct = {}
  for _, p in ipairs({ 50, 75, 90, 95, 99, 99.9 }) do
    pct[tostring(p)] = latency:percentile(p) / 1000.0
  end
  local out = {
    duration_s = summary.duration / 1e6,
    requests = summary.requests,
    bytes = summary.bytes,
    errors = summary.errors,
    status = codes,
    latency_ms = {
      min = latency.min / 1000.0,
      mean = latency.mean / 1000.0,
      stdev = latency.stdev / 1000.0,
      max = latency.max / 1000.0,
      percentiles = pct,
    },
  }
  io.write("BENCH_JSON " .. encode(out) .. "\n")
end

-- Installs the handlers every scenario shares, unless the script defined its own:
-- setup (thread ids), response (status counts), delay (pacing), done (JSON summary).
function M.install()
  setup = setup or M.setup
  response = response or function(status, headers, body) M.count(status) end
  done = done or M.done
  if M.delay_ms > 0 then
    delay = delay or function() return M.delay_ms end
  end
end

return M
