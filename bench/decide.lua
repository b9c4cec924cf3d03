-- wrk script: POST /v1/decide for the customers user-0 .. user-4999 (the latency run's
-- profiles) at the decision point `home` (50 candidate actions, 3 slots), from an iPhone.
-- Arguments (after --): <Authorization header value> <requests/s per wrk thread, held by
-- bench/pace.lua; 0 for as fast as the connections go>

-- bench/pace.lua, next to this script.
local pace = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "pace.lua")

local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = args[1]
  wait = pace(tonumber(args[2]) or 0)
  counter = thread_id
end

function request()
  counter = counter + 2
  local body = string.format(
    '{"userId":"user-%d","decisionPoint":"home","slots":3,"context":{"userAgent":"Mozilla/5.0 ' ..
    '(iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) ' ..
    'Version/17.1 Mobile/15E148 Safari/604.1","campaign":{"source":"tiktok"}}}',
    counter % 5000)
  return wrk.format(nil, "/v1/decide", nil, body)
end

function delay()
  return wait()
end
