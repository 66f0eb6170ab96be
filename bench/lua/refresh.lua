-- POST /v1/auth/refresh with rotation. Run with as many threads as connections (-t = -c):
-- each thread then owns one connection and one token chain, and always presents the token
-- returned by its previous refresh, like a real client. A broken chain shows up as 401s.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")

local headers = { ["Content-Type"] = "application/json" }
local token

function init(args)
  local tokens = common.lines(os.getenv("BENCH_REFRESH_TOKENS"))
  token = tokens[((thread_id - 1) % #tokens) + 1]
end
function request()
  return wrk.format("POST", "/v1/auth/refresh", headers,
    '{"refresh_token":"' .. token .. '"}')
end
function response(status, headers, body)
  common.count(status)
  if status == 200 then
    token = body:match('"refresh_token"%s*:%s*"([^"]+)"') or token
  end
end
common.install()
