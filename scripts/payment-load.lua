-- wrk script: order payments with a coupon, one per request, from a prepared list of "account order coupon" lines
-- (COFFER_PAYMENTS: the file; COFFER_KEY: platform key). Each wrk thread takes every n-th line, so no order is paid twice.
local key = os.getenv("COFFER_KEY")
local file = os.getenv("COFFER_PAYMENTS")
local threads = {}
local lines = {}
for line in io.lines(file) do table.insert(lines, line) end

function setup(thread)
  thread:set("id", #threads)
  thread:set("count", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  next_line = id + 1
  step = tonumber(os.getenv("COFFER_THREADS") or "2")
end

function request()
  local line = lines[next_line]
  next_line = next_line + step
  if line == nil then line = lines[1] end
  local account, order, coupon = line:match("(%S+) (%S+) (%S+)")
  local headers = { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json",
                    ["Idempotency-Key"] = "pay-" .. order }
  return wrk.format("POST", "/v1/accounts/" .. account .. "/order-payments", headers,
    '{"orderIds":["' .. order .. '"],"couponIds":["' .. coupon .. '"]}')
end
