-- POST /v1/auth/login as a random seeded user (user<i>@bench.invalid, one shared password).
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")

local users = tonumber(os.getenv("BENCH_USERS") or "1000")
local password = os.getenv("BENCH_PASSWORD")
local headers = { ["Content-Type"] = "application/json" }

function init(args) math.randomseed(os.time() * 1000 + thread_id) end
function request()
  local body = string.format('{"email":"user%d@bench.invalid","password":"%s"}',
    math.random(0, users - 1), password)
  return wrk.format("POST", "/v1/auth/login", headers, body)
end
common.install()
