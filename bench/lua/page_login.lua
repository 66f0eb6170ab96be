-- POST /login (the hosted page's form) as a random seeded user: a browser's anti-forgery
-- cookie and the token of its form, prepared by bench/run.py (page_forms), per request.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
local common = require("common")

local users = tonumber(os.getenv("BENCH_USERS") or "1000")
local password = os.getenv("BENCH_PASSWORD")
local origin = os.getenv("BENCH_ORIGIN")
local forms = {}
local n = 0

function init(args)
  math.randomseed(os.time() * 1000 + thread_id)
  for _, line in ipairs(common.lines(os.getenv("BENCH_PAGE_FORMS"))) do
    local cookie, token = line:match("^(%S+) (%S+)$") -- name=value, token
    table.insert(forms, { cookie = cookie, token = token })
  end
  n = thread_id
end
function request()
  n = n + 1
  local form = forms[(n % #forms) + 1]
  local body = string.format("csrf_token=%s&email=user%d%%40bench.invalid&password=%s",
    form.token, math.random(0, users - 1), password)
  return wrk.format("POST", "/login", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = form.cookie,
    ["Origin"] = origin,
  }, body)
end
common.install()
