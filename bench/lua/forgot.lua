-- POST /v1/auth/password/forgot for a seeded address (BENCH_FORGOT=known: forgot<i>@, seeded
-- by the scenario) or an address with no account (unknown: nobody<i>@), side by side.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")

local users = tonumber(os.getenv("BENCH_FORGOT_USERS") or "1000")
local kind = os.getenv("BENCH_FORGOT") or "known"
local format = kind == "known" and "forgot%d@bench.example" or "nobody%d@bench.example"
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  math.randomseed(os.time() * 1000 + thread_id * 7 + (kind == "known" and 0 or 1))
end
function request()
  local body = string.format('{"email":"' .. format .. '"}', math.random(0, users - 1))
  return wrk.format("POST", "/v1/auth/password/forgot", headers, body)
end
common.install()
