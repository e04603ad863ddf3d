-- Chat messages for one compared path; the scenario (benchmarks/scenarios.py) sets the env:
--   PLAN                 the X-Plan sent
--   ACCOUNT, WORKSPACE   one fixed tenant; when ACCOUNT is empty, ACCOUNTS tenants instead,
--                        ACCOUNT_PREFIX .. i (each its own workspace), chosen by the chat
--   CHATS, CHAT_PREFIX   cycle over CHATS chat ids; 0: a never-seen chat id every request
--   RUN_ID               keeps never-seen chat ids fresh across runs
-- benchmarks/openloop.c sends the same requests from the same variables: keep the two in step.
local plan = os.getenv("PLAN") or "unlimited"
local account = os.getenv("ACCOUNT") or ""
local workspace = os.getenv("WORKSPACE") or account
local accounts = tonumber(os.getenv("ACCOUNTS") or "1")
local account_prefix = os.getenv("ACCOUNT_PREFIX") or "a"
local chats = tonumber(os.getenv("CHATS") or "0")
local chat_prefix = os.getenv("CHAT_PREFIX") or "c"
local run = os.getenv("RUN_ID") or "0"
local n = 0
wrk.method = "POST"
wrk.body = '{"text": "hello"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Plan"] = plan
if account ~= "" then
  wrk.headers["X-Account-ID"] = account
  wrk.headers["X-Workspace-ID"] = workspace
end

request = function()
  n = n + 1
  local chat = n
  local id = chat_prefix .. run .. "-" .. n
  if chats > 0 then
    chat = n % chats
    id = chat_prefix .. chat
  end
  if account == "" then
    local tenant = account_prefix .. (chat % accounts)
    wrk.headers["X-Account-ID"] = tenant
    wrk.headers["X-Workspace-ID"] = tenant
  end
  return wrk.format(nil, "/v1/chats/" .. id .. "/messages")
end
