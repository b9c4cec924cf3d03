-- The requests of one wrk thread, formatted once (dofile'd by decide.lua and experience.lua):
-- wrk shares the 2 cores with the server, and formatting every request again cost the client
-- CPU that the plain /healthz run they are compared with does not spend.
-- customer_requests(path, body_format, thread_id, customers) formats a POST to `path` for every
-- other customer of user-0 .. user-(customers - 1), starting at thread_id (so the two wrk
-- threads share them out), with string.format(body_format, customer), and returns a function
-- that hands them out in turn.
return function(path, body_format, thread_id, customers)
  local requests = {}
  for i = 0, customers / 2 - 1 do
    local body = string.format(body_format, (thread_id + 2 * i) % customers)
    requests[#requests + 1] = wrk.format(nil, path, nil, body)
  end
  local counter = 0
  return function()
    counter = counter % #requests + 1
    return requests[counter]
  end
end
