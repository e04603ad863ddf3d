-- Deny path, worst case: the over-quota Sandbox workspace tries a never-seen chat id each time.
-- Only Redis knows whether that chat is live (a live chat may go on), so each costs one EVALSHA.
-- ACCOUNT names the tenant.
local run = os.getenv("RUN_ID") or "0"
local n = 0
wrk.method = "POST"
wrk.body = '{"text": "hello"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Plan"] = "sandbox"
wrk.headers["X-Account-ID"] = os.getenv("ACCOUNT") or "full-account"
wrk.headers["X-Workspace-ID"] = "full-workspace"

request = function()
  n = n + 1
  return wrk.format(nil, "/v1/chats/fresh" .. run .. "-" .. n .. "/messages")
end

local pace = tonumber(os.getenv("PACE_MS") or "0")
if pace > 0 then
  delay = function() return pace end
end
