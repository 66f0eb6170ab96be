-- POST /v1/auth/register with unique emails (run id, thread, counter).
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")

local run = os.getenv("BENCH_RUN_ID") or "run"
local headers = { ["Content-Type"] = "application/json" }
local n = 0

function request()
  n = n + 1
  local body = string.format(
    '{"email":"reg-%s-%d-%d@example.com","password":"Correct-Horse-%d-Battery","name":"Bench"}',
    run, thread_id, n, n)
  return wrk.format("POST", "/v1/auth/register", headers, body)
end
common.install()
