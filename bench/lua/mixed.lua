-- A realistic mix for an identity service in front of an API: mostly token use, some
-- rotation, few password logins. Run with -t = -c: each thread owns one session's chain.
--   65% GET /v1/users/me   15% JWKS   15% refresh (rotation)   5% login
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")

local users = tonumber(os.getenv("BENCH_USERS") or "1000")
local password = os.getenv("BENCH_PASSWORD")
local json = { ["Content-Type"] = "application/json" }
local refresh_token, access_token, last
local jwks_req

function init(args)
  math.randomseed(os.time() * 1000 + thread_id)
  local refresh = common.lines(os.getenv("BENCH_REFRESH_TOKENS"))
  local access = common.lines(os.getenv("BENCH_ACCESS_TOKENS"))
  refresh_token = refresh[((thread_id - 1) % #refresh) + 1]
  access_token = access[((thread_id - 1) % #access) + 1]
  jwks_req = wrk.format("GET", "/.well-known/jwks.json")
end
function request()
  local r = math.random(100)
  if r <= 65 then
    last = "me"
    return wrk.format("GET", "/v1/users/me", { ["Authorization"] = "Bearer " .. access_token })
  elseif r <= 80 then
    last = "jwks"
    return jwks_req
  elseif r <= 95 then
    last = "refresh"
    return wrk.format("POST", "/v1/auth/refresh", json, '{"refresh_token":"' .. refresh_token .. '"}')
  end
  last = "login"
  return wrk.format("POST", "/v1/auth/login", json, string.format(
    '{"email":"user%d@bench.invalid","password":"%s"}', math.random(0, users - 1), password))
end
function response(status, headers, body)
  common.count(status)
  if last == "refresh" and status == 200 then
    refresh_token = body:match('"refresh_token"%s*:%s*"([^"]+)"') or refresh_token
    access_token = body:match('"access_token"%s*:%s*"([^"]+)"') or access_token
  end
end
common.install()
