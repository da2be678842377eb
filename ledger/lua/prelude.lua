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
