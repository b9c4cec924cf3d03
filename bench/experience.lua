-- wrk script: POST /v1/experience as fast as the connections allow, for the customers user-0 ..
-- user-4999 (the latency run's profiles) from an iPhone, naming one catalog item, with the
-- requests formatted once (bench/customer_requests.lua, next to this script).
-- Arguments (after --): <Authorization header value>
local customer_requests =
  dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "customer_requests.lua")

local BODY = '{"userId":"user-%d","items":["sku-1"],"context":{"userAgent":"Mozilla/5.0 ' ..
  '(iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) ' ..
  'Version/17.1 Mobile/15E148 Safari/604.1","campaign":{"source":"tiktok","medium":' ..
  '"short_video"},"page":{"url":"https://shop.example/p/sku-1"}}}'

local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = args[1]
  next_request = customer_requests("/v1/experience", BODY, thread_id, 5000)
end

function request()
  return next_request()
end
