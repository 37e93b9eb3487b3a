-- GET /hello/reader<n>: 1,000 stored users (reader + n in letters, a=0 ... j=9, n = 1..1000), read
-- in turn (one user only would put every read on one connection: the sink keeps a key's rows in order).
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "report.lua")
local threads = 0
function setup(thread) threads = threads + 1; thread:set("thread_id", threads) end
local counter = 0
local digits = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
function request()
  counter = counter + 1
  local n = tostring((counter * 7 + thread_id * 131) % 1000 + 1)
  return wrk.format("GET", "/hello/reader" .. n:gsub("%d", function(d) return digits[tonumber(d) + 1] end))
end
