-- POST /webhook "created" events (meetperry-webhook), each its own task id: unique across
-- threads and runs through the run's label (wrk's argument after --) and the thread.
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "report.lua")
local threads = 0
function setup(thread) threads = threads + 1; thread:set("thread_id", threads) end
local counter = 0
function init(args) prefix = args[1] .. "-" .. thread_id end
function request()
  counter = counter + 1
  local body = '{"event":"created","timestamp":"2026-12-01T10:00:00Z","metadata":{"userId":"u' ..
    (counter % 100) .. '","id":"' .. prefix .. "-" .. counter .. '","content":"task","isCompleted":false}}'
  return wrk.format("POST", "/webhook", {["Content-Type"] = "application/json"}, body)
end
