-- wrk script: POST /v1/decide for the customers user-0 .. user-4999 (the latency run's
-- profiles) at the decision point `home` (50 candidate actions, 3 slots), from an iPhone.
-- Arguments (after --): <Authorization header value> <requests/s per wrk thread, held by
-- bench/pace.lua; 0 for as fast as the connections go>
--
-- The requests are formatted once (bench/customer_requests.lua), and the unpaced run defines no
-- delay(): with one, wrk parks every connection on a timer between an answer and the next
-- request (two more epoll_ctl calls per request), which the plain /healthz run it is compared
-- with does not do.

-- bench/pace.lua and bench/customer_requests.lua, next to this script.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)")
local pace = dofile(dir .. "pace.lua")
local customer_requests = dofile(dir .. "customer_requests.lua")

local BODY = '{"userId":"user-%d","decisionPoint":"home","slots":3,"context":{"userAgent":' ..
  '"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like ' ..
  'Gecko) Version/17.1 Mobile/15E148 Safari/604.1","campaign":{"source":"tiktok"}}}'

local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = args[1]
  next_request = customer_requests("/v1/decide", BODY, thread_id, 5000)
  local rate = tonumber(args[2]) or 0
  if rate > 0 then
    local wait = pace(rate)
    delay = function() return wait() end
  end
end

function request()
  return next_request()
end
