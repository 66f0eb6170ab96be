-- POST a fixed form with HTTP Basic client authentication: the token endpoint
-- (client_credentials) or introspection. BENCH_PATH, BENCH_BASIC (base64 of id:secret),
-- BENCH_FORM (the urlencoded body).
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")

local path = os.getenv("BENCH_PATH")
local body = os.getenv("BENCH_FORM")
local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC"),
}

function request()
  return wrk.format("POST", path, headers, body)
end
common.install()
