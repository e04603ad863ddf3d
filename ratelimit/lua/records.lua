-- records.lua: change an account's admin records (overrides or suspensions) in one step.
--
-- KEYS[1]   the hash (see keys.py: overrides_key, suspensions_key)
-- ARGV[1]   now in ms, or "" to use the server clock (TIME)
-- ARGV[2..] pairs: field, value; an empty value deletes the field
-- Values are "UNTIL|PAYLOAD" (UNTIL in ms, "" for no end). Records that have ended are dropped,
-- and the hash lives as long as its last record: no TTL while one has no end.
-- Returns   the records left, as a flat field, value list.

local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
for i = 2, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
local all = redis.call('HGETALL', KEYS[1])
local left, last, forever = {}, 0, false
for i = 1, #all, 2 do
  local u = string.match(all[i + 1], '^(%d*)|')
  if u == '' or u == nil then
    forever = true
  elseif tonumber(u) <= now then
    redis.call('HDEL', KEYS[1], all[i])
    u = false
  elseif tonumber(u) > last then
    last = tonumber(u)
  end
  if u ~= false then
    left[#left + 1] = all[i]
    left[#left + 1] = all[i + 1]
  end
end
if #left > 0 then
  if forever then
    redis.call('PERSIST', KEYS[1])
  else
    redis.call('PEXPIRE', KEYS[1], last - now + 60000)
  end
end
return left
