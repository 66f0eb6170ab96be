-- POST /oauth2/token grant_type=refresh_token with rotation. Run with -t = -c: each thread
-- owns one connection and one grant's token chain, always presenting the refresh token of its
-- previous answer (a broken chain shows up as 400 invalid_grant).
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")

local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC"),
}
local token

function init(args)
  local tokens = common.lines(os.getenv("BENCH_REFRESH_TOKENS"))
  token = tokens[((thread_id - 1) % #tokens) + 1]
end
function request()
  return wrk.format("POST", "/oauth2/token", headers,
    "grant_type=refresh_token&refresh_token=" .. token)
end
function response(status, headers, body)
  common.count(status)
  if status == 200 then
    token = body:match('"refresh_token"%s*:%s*"([^"]+)"') or token
  end
end
common.install()
