-- POST /oauth2/token grant_type=urn:ietf:params:oauth:grant-type:device_code: the device
-- poll loop (RFC 8628 section 3.4). Run with -t = -c: each thread owns one connection and one
-- pending device code, polling it as fast as it can; every answer is 400 slow_down or
-- authorization_pending (both one short write transaction on the code's row).
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")

local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Authorization"] = "Basic " .. os.getenv("BENCH_BASIC"),
}
local body

function init(args)
  local codes = common.lines(os.getenv("BENCH_DEVICE_CODES"))
  body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code="
    .. codes[((thread_id - 1) % #codes) + 1]
end
function request()
  return wrk.format("POST", "/oauth2/token", headers, body)
end
function response(status, headers, body)
  common.count(status)
end
common.install()
