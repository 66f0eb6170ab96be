-- Sign-in with a second factor in one request: POST /v1/auth/login with the password and the
-- TOTP code of the current step (`totp_code`). Users are totp<i>@bench.invalid from
-- BENCH_TOTP_OFFSET on, walked in order per thread so that none presents a step's code twice
-- (bench/mfa.py); the offset keeps them apart from the two-request scenario's.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")

local users = tonumber(os.getenv("BENCH_TOTP_USERS") or "1000")
local offset = tonumber(os.getenv("BENCH_TOTP_OFFSET") or "0")
local password = os.getenv("BENCH_PASSWORD")
local headers = { ["Content-Type"] = "application/json" }
local codes = {}
local threads_total = 1
local next_user

function init(args)
  for step, code in string.gmatch(os.getenv("BENCH_TOTP_CODES"), "(%d+):(%d+)") do
    codes[tonumber(step)] = code
  end
  threads_total = tonumber(os.getenv("BENCH_THREADS") or "2")
  next_user = thread_id - 1
end
function request()
  local body = string.format(
    '{"email":"totp%d@bench.invalid","password":"%s","totp_code":"%s"}',
    offset + next_user % (users - offset), password, codes[math.floor(os.time() / 30)])
  next_user = next_user + threads_total
  return wrk.format("POST", "/v1/auth/login", headers, body)
end
function response(status, headers, body)
  common.count(status)
end
common.install()
