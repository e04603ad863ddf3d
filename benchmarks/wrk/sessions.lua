-- Allow path: messages in existing chat sessions. Cycles over SESSIONS chats (default 10000)
-- spread over 100 accounts on the Unlimited plan; each chat stays well inside its message bucket.
local sessions = tonumber(os.getenv("SESSIONS") or "10000")
local n = 0
wrk.method = "POST"
wrk.body = '{"text": "hello"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Plan"] = "unlimited"

request = function()
  n = (n + 1) % sessions
  local account = "sa" .. (n % 100)
  wrk.headers["X-Account-ID"] = account
  wrk.headers["X-Workspace-ID"] = account
  return wrk.format(nil, "/v1/chats/c" .. n .. "/messages")
end

local pace = tonumber(os.getenv("PACE_MS") or "0")
if pace > 0 then
  delay = function() return pace end
end
