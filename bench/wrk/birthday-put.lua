-- PUT /hello/<username> {"dateOfBirth": "1990-05-17"}, a new username (letters only) each time,
-- unique across threads and runs: the run's label (wrk's argument after --), the thread, a counter.
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "report.lua")
local threads = 0
function setup(thread) threads = threads + 1; thread:set("thread_id", threads) end
local counter = 0
local letters = "abcdefghijklmnopqrstuvwxyz"
local function name(n)
  local text = ""
  repeat
    local digit = n % 26
    text = text .. letters:sub(digit + 1, digit + 1)
    n = math.floor((n - digit) / 26)
  until n == 0
  return text
end
function init(args) prefix = (args[1] or "put") .. name(thread_id) end
function request()
  counter = counter + 1
  return wrk.format("PUT", "/hello/" .. prefix .. "x" .. name(counter), {["Content-Type"] = "application/json"},
    '{"dateOfBirth":"1990-05-17"}')
end
