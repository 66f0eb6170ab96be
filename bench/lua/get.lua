-- GET one path (JWKS, /health/ready, the trivial baseline). BENCH_PATH names it.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")

local path = os.getenv("BENCH_PATH") or "/"
local req

function init(args) req = wrk.format("GET", path) end
function request() return req end
common.install()
