-- Pacing for the wrk scripts (dofile'd by track.lua and decide.lua). Debian has wrk, not wrk2:
-- a script can only make a connection wait a whole number of milliseconds after an answer.
-- pace(rate) returns a delay() for one wrk thread that holds `rate` requests/s over its
-- connections whatever the latency: each answer takes the thread's next send slot (1000 / rate
-- ms after the one before) and its connection waits for it (rounded to whole milliseconds,
-- which averages out because the slots are absolute times). The rate holds while a connection
-- is free for every slot; behind by over 100 ms, the slots restart from now instead of
-- bursting to catch up. pace(0): no pause, as fast as the connections go.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } whisperer_pace_timespec;
int clock_gettime(int clock_id, whisperer_pace_timespec *tp);
]]
local ts = ffi.new("whisperer_pace_timespec")
local CLOCK_MONOTONIC = 1

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

return function(rate)
  if rate <= 0 then
    return function() return 0 end
  end
  local interval = 1000 / rate
  local next_slot = nil
  return function()
    local now = now_ms()
    if next_slot == nil or next_slot < now - 100 then next_slot = now end
    next_slot = next_slot + interval
    return math.max(0, math.floor(next_slot - now + 0.5))
  end
end
