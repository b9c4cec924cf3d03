-- wrk script: single-event POST /v1/track at a fixed rate (bench/pace.lua). Every request has a
-- new messageId, so none is deduplicated away.
-- Arguments (after --): <Authorization header value> <requests/s per wrk thread>

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
  wait = pace(tonumber(args[2]) or 2500)
  counter = 0
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"userId":"user-%d","event":"Button Clicked","messageId":"wrk-%d-%d",' ..
    '"properties":{"button":"buy","page":"/checkout","price":19.99},' ..
    '"context":{"library":{"name":"analytics.js","version":"5.2.0"}}}',
    counter % 5000, thread_id, counter)
  return wrk.format(nil, "/v1/track", nil, body)
end

function delay()
  return wait()
end
