-- Sign-in with a second factor: POST /v1/auth/login (answered 401 mfa-required with a flow
-- id), then POST /v1/auth/login/mfa with the TOTP code of the current step. Run with as many
-- threads as connections (-t = -c): each thread owns one connection and alternates the two
-- requests. Users are totp<i>@bench.invalid, walked in order per thread so that none presents
-- a step's code twice (bench/mfa.py). A completed sign-in is the 200 of the second request.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")

local users = tonumber(os.getenv("BENCH_TOTP_USERS") or "1000")
local password = os.getenv("BENCH_PASSWORD")
local headers = { ["Content-Type"] = "application/json" }
local codes = {}
local threads_total = 1
local next_user
local flow

function init(args)
  for step, code in string.gmatch(os.getenv("BENCH_TOTP_CODES"), "(%d+):(%d+)") do
    codes[tonumber(step)] = code
  end
  threads_total = tonumber(os.getenv("BENCH_THREADS") or "8")
  next_user = thread_id - 1
end
function request()
  if flow then
    local body = string.format('{"flow_id":"%s","totp_code":"%s"}', flow,
      codes[math.floor(os.time() / 30)])
    flow = nil
    return wrk.format("POST", "/v1/auth/login/mfa", headers, body)
  end
  local body = string.format('{"email":"totp%d@bench.invalid","password":"%s"}',
    next_user % users, password)
  next_user = next_user + threads_total
  return wrk.format("POST", "/v1/auth/login", headers, body)
end
function response(status, headers, body)
  common.count(status)
  if status == 401 then
    flow = body:match('"flow_id"%s*:%s*"([^"]+)"')
  end
end
common.install()
