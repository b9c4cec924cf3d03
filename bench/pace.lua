-- Pacing for the wrk scripts (dofile'd by track.lua and decide.lua): wrk's timers count whole
-- milliseconds, so a pause with a fraction waits the next whole millisecond that often (2.3:
-- 3 ms three times in ten, else 2), which averages to the pause asked for. bench/run.sh tunes
-- the pause so that the connections offer a chosen rate.
return function(pause_ms)
  local whole = math.floor(pause_ms)
  local fraction = pause_ms - whole
  return function()
    if fraction > 0 and math.random() < fraction then return whole + 1 end
    return whole
  end
end
