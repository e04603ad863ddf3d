-- Deny path: a Sandbox workspace that has used its 100 chat sessions this month keeps trying
-- to start chats; the same 50 refused chat ids come back again and again (users retrying).
-- Sandbox is never suspended, so these stay 429s for its limit; ACCOUNT names the tenant.
local n = 0
wrk.method = "POST"
wrk.body = '{"text": "hello"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Plan"] = "sandbox"
wrk.headers["X-Account-ID"] = os.getenv("ACCOUNT") or "full-account"
wrk.headers["X-Workspace-ID"] = "full-workspace"

request = function()
  n = (n + 1) % 50
  return wrk.format(nil, "/v1/chats/retry-" .. n .. "/messages")
end

local pace = tonumber(os.getenv("PACE_MS") or "0")
if pace > 0 then
  delay = function() return pace end
end
