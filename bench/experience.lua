-- wrk script: POST /v1/experience as fast as the connections allow, for the customers user-0 ..
-- user-4999 (the latency run's profiles) from an iPhone, naming one catalog item.
-- Arguments (after --): <Authorization header value>
--
-- The requests are formatted once, in init: wrk shares the 2 cores with the server, and
-- formatting each request again cost the client CPU the plain /healthz run it is compared with
-- does not spend (bench/decide.lua does the same).
local CUSTOMERS = 5000
local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = args[1]
  -- Each of the two wrk threads walks every other customer.
  requests = {}
  for i = 0, CUSTOMERS / 2 - 1 do
    local body = string.format(
      '{"userId":"user-%d","items":["sku-1"],"context":{"userAgent":"Mozilla/5.0 (iPhone; ' ..
      'CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 ' ..
      'Mobile/15E148 Safari/604.1","campaign":{"source":"tiktok","medium":"short_video"},' ..
      '"page":{"url":"https://shop.example/p/sku-1"}}}',
      (thread_id + 2 * i) % CUSTOMERS)
    requests[#requests + 1] = wrk.format(nil, "/v1/experience", nil, body)
  end
  counter = 0
end

function request()
  counter = counter % #requests + 1
  return requests[counter]
end
