-- Deny path: the second workspace of an LTD account (the plan allows one) keeps sending; its
-- 50th refusal suspended it for a day, and from then on every request is refused as suspended.
local n = 0
wrk.method = "POST"
wrk.body = '{"text": "hello"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Plan"] = "ltd"
wrk.headers["X-Account-ID"] = os.getenv("ACCOUNT") or "suspended-account"
wrk.headers["X-Workspace-ID"] = "second-workspace"

request = function()
  n = (n + 1) % 50
  return wrk.format(nil, "/v1/chats/retry-" .. n .. "/messages")
end

local pace = tonumber(os.getenv("PACE_MS") or "0")
if pace > 0 then
  delay = function() return pace end
end
