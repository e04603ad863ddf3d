-- Allow path: a new chat with every request (the session starts, two quotas count), spread over
-- 1000 accounts on the Unlimited plan. RUN_ID keeps chat ids fresh across runs.
local run = os.getenv("RUN_ID") or "0"
local n = 0
wrk.method = "POST"
wrk.body = '{"text": "hello"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Plan"] = "unlimited"

request = function()
  n = n + 1
  local account = "na" .. (n % 1000)
  wrk.headers["X-Account-ID"] = account
  wrk.headers["X-Workspace-ID"] = account
  return wrk.format(nil, "/v1/chats/n" .. run .. "-" .. n .. "/messages")
end

local pace = tonumber(os.getenv("PACE_MS") or "0")
if pace > 0 then
  delay = function() return pace end
end
