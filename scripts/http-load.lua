-- wrk script: POST charges of 0.01 with a fresh Idempotency-Key per request.
-- Environment: COFFER_KEY (platform key), COFFER_ACCOUNT, COFFER_BATCH (operations per request; 0 = single endpoint).
local counter = 0
local threads = {}
local key = os.getenv("COFFER_KEY")
local account = os.getenv("COFFER_ACCOUNT")
local batch = tonumber(os.getenv("COFFER_BATCH") or "0")
local run = os.getenv("COFFER_RUN") or tostring(os.time())

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local headers = { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json" }
  if batch == 0 then
    headers["Idempotency-Key"] = run .. "-" .. id .. "-" .. counter
    return wrk.format("POST", "/v1/accounts/" .. account .. "/charges", headers,
      '{"amount":"0.01","mode":"postpaid","reference":"load"}')
  end
  local ops = {}
  for i = 1, batch do
    ops[i] = '{"accountId":"' .. account .. '","amount":"0.01","mode":"postpaid","idempotencyKey":"' ..
      run .. "-" .. id .. "-" .. counter .. "-" .. i .. '"}'
  end
  return wrk.format("POST", "/v1/batch/charges", headers, '{"operations":[' .. table.concat(ops, ",") .. ']}')
end

function response(status, headers, body)
  if status ~= 200 and status ~= 201 then
    print("unexpected status " .. status .. ": " .. body)
  end
end
