-- wrk script: POST /v1/experience as fast as the connections allow, for the customers user-0 ..
-- user-4999 (the latency run's profiles) from an iPhone, naming one catalog item.
-- Arguments (after --): <Authorization header value>
local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = args[1]
  counter = thread_id
end

function request()
  counter = counter + 2
  local body = string.format(
    '{"userId":"user-%d","items":["sku-1"],"context":{"userAgent":"Mozilla/5.0 (iPhone; ' ..
    'CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 ' ..
    'Mobile/15E148 Safari/604.1","campaign":{"source":"tiktok","medium":"short_video"},' ..
    '"page":{"url":"https://shop.example/p/sku-1"}}}',
    counter % 5000)
  return wrk.format(nil, "/v1/experience", nil, body)
end
