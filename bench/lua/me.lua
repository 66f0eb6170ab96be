-- Authenticated GET /v1/users/me, cycling through access tokens of distinct users/sessions.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")

local reqs = {}
local n = 0

function init(args)
  for _, token in ipairs(common.lines(os.getenv("BENCH_ACCESS_TOKENS"))) do
    table.insert(reqs, wrk.format("GET", "/v1/users/me", { ["Authorization"] = "Bearer " .. token }))
  end
  n = thread_id
end
function request()
  n = n + 1
  return reqs[(n % #reqs) + 1]
end
common.install()
