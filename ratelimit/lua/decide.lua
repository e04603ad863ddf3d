-- decide.lua: check every limit one request touches, then consume all of them or none.
--
-- KEYS[1]        the chat session marker (value: idle-until ms), when ARGV[3] > 0;
--                then one key per limit op
-- ARGV[1]        now in ms, or "" to use the server clock (TIME)
-- ARGV[2]        "1" consume, "0" peek (no writes)
-- ARGV[3]        session idle timeout in ms; 0 when the request has no chat session
-- ARGV[4]        number of ops; then 9 values per op:
--                kind (1 fixed window, 2 sliding window, 3 token bucket, 4 distinct),
--                gate ("1": counts only when the request starts a session), limit, cost,
--                p1..p4 (fixed: window starts b0..b3; sliding: window ms; bucket: burst, period ms;
--                distinct: member, idle ttl ms), notify (first used count that crosses notify_at; 0 none)
-- Returns        {allowed, new_session, now} then 7 integers per op:
--                allowed, used, remaining, reset ms (0: never), retry ms, notice, first denial.
--                {-1, 0, now} when now is outside every fixed window given (caller resyncs its clock).
--
-- Lifecycle, when ARGV goes on after the ops (suspension, denial count, overrides):
-- KEYS after the op keys: the account's overrides hash, its suspensions hash, the workspace's
--                denial counter. Hash values are "UNTIL|PAYLOAD", UNTIL in ms or "" for no end;
--                override fields are LIMIT (account) and LIMIT:w:WORKSPACE, payload the amount;
--                suspension fields are WORKSPACE and "*" (the whole account).
-- ARGV after the ops: workspace (escaped), denials that suspend it (0: never), within ms, for ms,
--                then 2 values per op: limit name, notify_at in millionths (0: no notice).
-- Returns        {-2, 0, now, held (1 workspace, 2 account), until ms (0: no end)} when consuming
--                for a suspended workspace; otherwise, after the per-op values: held (0: none),
--                until, 1 if this denial suspended the workspace, then each op's limit in force.
--
-- Refused new chats: a chat refused by a limit that counts sessions is refused again while it
-- stays new, so app processes cache that denial (blocks.py). It can still start another way:
-- a route without that limit, another plan. So such a refusal marks the workspace (field 'c'
-- of its denial counter: until when a cached denial may last), and a session that starts while
-- the mark stands publishes the account on fairuse:invalidate, drops the mark and answers
-- new_session = 2: every process forgets the account's cached denials.

local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local consume = ARGV[2] == '1'
local timeout = tonumber(ARGV[3])
local nops = tonumber(ARGV[4])
local first_key = 1
local new_session = 0
if timeout > 0 then
  first_key = 2
  local idle_until = tonumber(redis.call('GET', KEYS[1]))
  if not idle_until or idle_until <= now then new_session = 1 end
end

local function int(x) return string.format('%.0f', x) end

local function until_of(v)  -- an admin record's end: 0 for none, nil when absent or over
  if not v then return nil end
  local u = string.match(v, '^(%d*)|')
  if not u then return nil end
  if u == '' then return 0 end
  u = tonumber(u)
  if u > now then return u end
  return nil
end

local tail = 4 + nops * 9
local life = #ARGV > tail
local lk, ws, overrides
local held, held_until = 0, 0
if life then
  lk = first_key + nops
  ws = ARGV[tail + 1]
  local s = redis.call('HMGET', KEYS[lk + 1], ws, '*')
  for which = 1, 2 do  -- both held: the one that ends later (0: never), the honest retry time
    local u = until_of(s[which])
    if u and (held == 0 or (held_until ~= 0 and (u == 0 or u > held_until))) then
      held, held_until = which, u
    end
  end
  if held > 0 and consume then return {-2, 0, now, held, held_until} end
  if nops > 0 then
    local fields = {}
    for i = 1, nops do
      local name = ARGV[tail + 3 + 2 * i]
      fields[2 * i - 1] = name .. ':w:' .. ws
      fields[2 * i] = name
    end
    overrides = redis.call('HMGET', KEYS[lk], unpack(fields))
  end
end

local function override(i)  -- the amount an admin set for op i, or nil
  for j = 2 * i - 1, 2 * i do
    local v = overrides[j]
    if v and until_of(v) then
      local amount = string.match(v, '|(%d+)$')
      if amount then return tonumber(amount) end
    end
  end
  return nil
end

local ops = {}
local allowed = true
for i = 1, nops do
  local a = 5 + (i - 1) * 9
  local op = {
    key = KEYS[first_key + i - 1], kind = tonumber(ARGV[a]),
    limit = tonumber(ARGV[a + 2]), cost = tonumber(ARGV[a + 3]), notify = tonumber(ARGV[a + 8]),
    notice = 0, first = 0, retry = 0,
  }
  if ARGV[a + 1] == '1' and new_session == 0 then op.cost, op.gated = 0, true end
  local amount = overrides and override(i)
  if amount then
    op.in_force, op.notify = amount, 0
    if op.limit ~= 9007199254740991 then op.limit = amount end  -- ops.UNCAPPED: count past it
    local ppm = tonumber(ARGV[tail + 4 + 2 * i])
    if ppm > 0 and op.kind ~= 3 then  -- ceil(amount * ppm / 10^6), in exact parts
      local hi = math.floor(amount / 1000000)
      if hi * 1000000 > amount then hi = hi - 1 end
      local q = hi * ppm + math.ceil((amount - hi * 1000000) * ppm / 1000000)
      if q < amount then op.notify = q end
    end
  end
  local limit, cost = op.limit, op.cost

  if op.kind == 1 then
    local b = {tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6]), tonumber(ARGV[a + 7])}
    local j = 0
    for k = 1, 3 do if now >= b[k] and now < b[k + 1] then j = k end end
    if j == 0 then return {-1, 0, now} end
    op.ws, op.reset = ARGV[a + 3 + j], b[j + 1]
    local h = redis.call('HMGET', op.key, 'w', 'n', 'x')
    op.stale = h[1] ~= op.ws
    local n = 0
    if not op.stale then n = tonumber(h[2]) or 0 end
    op.before, op.seen = n, h[3]
    op.ok = n + cost <= limit
    if not op.ok then op.retry = op.reset - now end
    op.used = n
    op.ttl = op.reset - now + 60000

  elseif op.kind == 2 then
    local len = tonumber(ARGV[a + 4])
    local w = math.floor(now / len)
    local h = redis.call('HMGET', op.key, 'w', 'c', 'p', 'nw', 'x')
    local sw, c, p = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3]) or 0
    if sw == w - 1 then p, c = c, 0 elseif sw ~= w then p, c = 0, 0 end
    local elapsed = now - w * len
    local est = c + math.floor(p * (len - elapsed) / len)
    op.w, op.len, op.c, op.p, op.nw, op.seen = w, len, c, p, h[4], h[5]
    op.ws = tostring(w)
    op.before = est
    op.ok = est + cost <= limit
    op.used = est
    if c > 0 then op.reset = (w + 2) * len elseif p > 0 then op.reset = (w + 1) * len else op.reset = now end
    if not op.ok then
      if c + cost <= limit then
        local room = limit - c - cost
        local e = math.floor(len - (room + 1) * len / p) + 1
        op.retry = math.max(1, e - elapsed)
      else
        local room = limit - cost
        local e = len
        if room >= 0 then e = math.max(0, math.floor(len - (room + 1) * len / c) + 1) end
        op.retry = (len - elapsed) + e
      end
    end
    op.ttl = 2 * len + 1000

  elseif op.kind == 3 then
    local burst, per = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
    local cap = burst * per
    local h = redis.call('HMGET', op.key, 't', 'ts', 'x')
    local level = cap
    if h[1] then
      level = math.min(cap, tonumber(h[1]) + math.max(0, now - tonumber(h[2])) * limit)
    end
    local need = cost * per
    op.level, op.need, op.seen = level, need, h[3]
    if level >= cap then op.seen = false end  -- a full bucket starts a new run of denials
    op.ok = level >= need
    op.used = burst - math.floor(level / per)
    if not op.ok then
      op.retry = math.ceil((math.min(need, cap) - level) / limit)
    end
    op.cap, op.per, op.burst = cap, per, burst

  else
    local member = ARGV[a + 4]
    op.ttl = tonumber(ARGV[a + 5])
    local card = redis.call('SCARD', op.key)
    op.member = member
    op.is = redis.call('SISMEMBER', op.key, member) == 1
    if op.is or cost == 0 then op.cost = 0; cost = 0 end
    op.before = card
    op.ok = card + cost <= limit
    op.used = card
    op.reset = 0
  end

  -- A request that adds nothing to a limit by its nature (a live chat's message to a sessions
  -- quota, a known member) is never refused by it, even below a lowered amount. A byte quota's
  -- cost is 0 at check time too, but there a spent quota must refuse the upload.
  if consume and (op.gated or op.is) then op.ok, op.retry = true, 0 end
  if not op.ok then allowed = false end
  ops[i] = op
end

local out = {allowed and 1 or 0, new_session, now}
for i = 1, nops do
  local op = ops[i]
  local cost = op.cost
  if allowed and consume and cost > 0 then
    if op.kind == 1 then
      if op.stale then
        redis.call('HSET', op.key, 'w', op.ws, 'n', cost)
      else
        redis.call('HINCRBY', op.key, 'n', cost)
      end
      redis.call('PEXPIRE', op.key, op.ttl)
    elseif op.kind == 2 then
      redis.call('HSET', op.key, 'w', op.ws, 'c', op.c + cost, 'p', op.p)
      redis.call('PEXPIRE', op.key, op.ttl)
      op.reset = (op.w + 2) * op.len  -- this request's count leaves the estimate then
    elseif op.kind == 3 then
      local after = op.level - op.need
      redis.call('HSET', op.key, 't', int(after), 'ts', int(now), 'x', '0')
      redis.call('PEXPIRE', op.key, math.ceil((op.cap - after) / op.limit) + 60000)
    else
      redis.call('SADD', op.key, op.member)
      redis.call('PEXPIRE', op.key, op.ttl)
    end
  elseif allowed and consume and op.kind == 4 and op.is then
    redis.call('PEXPIRE', op.key, op.ttl)
  end
  if allowed then
    op.used = op.used + cost
    if op.notify > 0 and cost > 0 and op.before < op.notify and op.before + cost >= op.notify then
      op.notice = 1
      if op.kind == 2 then
        -- once per window; the estimate decays into the next window, where it would cross again
        if op.nw == op.ws or op.nw == tostring(op.w - 1) then
          op.notice = 0
        elseif consume then
          redis.call('HSET', op.key, 'nw', op.ws)
        end
      end
    end
  elseif not op.ok and consume then
    if op.kind == 1 or op.kind == 2 then
      if op.seen ~= op.ws then
        op.first = 1
        if op.kind == 1 and op.stale then
          redis.call('HSET', op.key, 'w', op.ws, 'n', 0, 'x', op.ws)
        else
          redis.call('HSET', op.key, 'x', op.ws)
        end
        redis.call('PEXPIRE', op.key, op.ttl)
      end
    elseif op.kind == 3 then
      if op.seen ~= '1' then
        op.first = 1
        redis.call('HSET', op.key, 'x', '1')
        redis.call('PEXPIRE', op.key, math.ceil((op.cap - op.level) / op.limit) + 60000)
      end
    end
  end
  local remaining = op.limit - op.used
  if op.kind == 3 then
    local level = op.level
    if allowed then level = level - op.need end
    remaining = math.floor(level / op.per)
    op.used = op.burst - remaining
    op.reset = now + math.ceil((op.cap - level) / op.limit)
  end
  if remaining < 0 then remaining = 0 end
  out[#out + 1] = op.ok and 1 or 0
  out[#out + 1] = op.used
  out[#out + 1] = remaining
  out[#out + 1] = op.reset
  out[#out + 1] = op.retry
  out[#out + 1] = op.notice
  out[#out + 1] = op.first
end
if allowed and consume and timeout > 0 then
  redis.call('SET', KEYS[1], int(now + timeout), 'PX', timeout + 60000)
end
if not life then return out end

local tripped = 0
local threshold = tonumber(ARGV[tail + 2])
if not allowed and consume and threshold > 0 then
  local within, hold = tonumber(ARGV[tail + 3]), tonumber(ARGV[tail + 4])
  local h = redis.call('HMGET', KEYS[lk + 2], 's', 'n', 'c')
  local start, n = tonumber(h[1]), tonumber(h[2]) or 0
  if not start or now >= start + within then start, n = now, 0 end
  n = n + 1
  if n >= threshold then
    local ttl = redis.call('PTTL', KEYS[lk + 1])
    redis.call('HSET', KEYS[lk + 1], ws, int(now + hold) .. '|auto')
    if ttl == -2 or (ttl >= 0 and ttl < hold + 60000) then
      redis.call('PEXPIRE', KEYS[lk + 1], hold + 60000)
    end
    redis.call('HDEL', KEYS[lk + 2], 's', 'n')  -- the count starts again; a chats mark stays
    tripped = 1
  else
    redis.call('HSET', KEYS[lk + 2], 's', int(start), 'n', n)
    local keep = start + within - now
    local mark = tonumber(h[3])
    if mark and mark - now > keep then keep = mark - now end
    redis.call('PEXPIRE', KEYS[lk + 2], keep + 60000)
  end
end

if consume and timeout > 0 and new_session == 1 then  -- see "Refused new chats" above
  local dk = KEYS[lk + 2]
  if allowed then
    local mark = tonumber(redis.call('HGET', dk, 'c'))
    if mark and mark > now then
      -- pcall: a user refused the channel is refused its subscription too, so no process of
      -- its apps caches denials, and the decision stands without the message
      redis.pcall('PUBLISH', 'fairuse:invalidate', string.match(KEYS[lk], '.*{([^{}]*)}'))
      redis.call('HDEL', dk, 'c')
      out[2] = 2
    end
  else
    local until_ms = 0
    for i = 1, nops do
      if not ops[i].ok and ARGV[6 + (i - 1) * 9] == '1' then  -- counts sessions
        until_ms = math.max(until_ms, now + ops[i].retry)
      end
    end
    if until_ms > now then
      local mark = tonumber(redis.call('HGET', dk, 'c'))
      if not mark or mark < until_ms then
        redis.call('HSET', dk, 'c', int(until_ms))
        if redis.call('PTTL', dk) < until_ms - now + 60000 then
          redis.call('PEXPIRE', dk, until_ms - now + 60000)
        end
      end
    end
  end
end
out[#out + 1] = held
out[#out + 1] = held_until
out[#out + 1] = tripped
for i = 1, nops do out[#out + 1] = ops[i].in_force or ops[i].limit end
return out
