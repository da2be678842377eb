-- Shared by every script (engine/scripts.py puts it in front of each).
-- Amounts travel as integer strings and go to HINCRBY as they are: Lua numbers are doubles,
-- balances are 64-bit integers, so amounts are never converted to Lua numbers.

-- The integer string with the opposite sign.
local function negate(amount)
  if string.sub(amount, 1, 1) == '-' then
    return string.sub(amount, 2)
  end
  return '-' .. amount
end
