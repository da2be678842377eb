-- Shared by every script (ledger/scripts.py puts it in front of each).
-- Amounts travel as integer strings and go to HINCRBY as they are: Lua numbers are doubles,
-- balances are 64-bit integers, so amounts are never converted to Lua numbers.

-- The integer string with the opposite sign.
local function negate(amount)
  if string.sub(amount, 1, 1) == '-' then
    return string.sub(amount, 2)
  end
  return '-' .. amount
end

-- Whether stream id a ("<ms>-<n>") comes at or before stream id b. Milliseconds since 1970
-- and per-millisecond counters are exact in a double.
local function stream_id_at_most(a, b)
  local a_ms, a_n = string.match(a, '^(%d+)-(%d+)$')
  local b_ms, b_n = string.match(b, '^(%d+)-(%d+)$')
  a_ms, a_n, b_ms, b_n = tonumber(a_ms), tonumber(a_n), tonumber(b_ms), tonumber(b_n)
  return a_ms < b_ms or (a_ms == b_ms and a_n <= b_n)
end

-- The next number of a counter whose numbers a restored, older Redis must never hand out again
-- (docs/storage.md, "Redis rollback"): INCR, but at least `per_ms` for every millisecond of
-- Redis's clock since 2026-01-01 UTC (ledger/numbers.py states it in Python). A Redis restored
-- and restarted is later on its clock than every draw before, which stayed below its floor
-- (no counter is drawn `per_ms` times a millisecond for long). The numbers stay exact doubles.
local NUMBER_ORIGIN_MS = 1767225600000
local function next_number(key, per_ms)
  local number = redis.call('INCR', key)
  local now = redis.call('TIME')
  local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  local floor = (ms - NUMBER_ORIGIN_MS) * per_ms
  if number < floor then
    redis.call('SET', key, string.format('%d', floor))
    number = floor
  end
  return number
end
