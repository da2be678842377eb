-- Deposit (amount > 0) or withdraw (amount < 0) free funds, keep the supply total, and journal
-- the movement on the funds stream (read by dbproc) under the next funds sequence number
-- (increasing, with a clock floor: never repeated by a restored Redis).
-- KEYS[1] the user's balance hash, KEYS[2] the supply hash (asset -> net deposits),
-- KEYS[3] the funds stream, KEYS[4] the funds sequence counter,
-- KEYS[5] (optional) the reference's claim, which makes the movement idempotent
-- ARGV[1] asset, ARGV[2] signed amount in minor units (an integer string), ARGV[3] user id,
-- ARGV[4] the caller's reference (free text), ARGV[5] time in Unix milliseconds,
-- with a claim: ARGV[6] the request ('user|asset|amount'), ARGV[7] the claim's TTL in seconds
-- Returns {1, new free balance as a string}; {2, the free balance the first movement left} for
-- the same request under a claimed reference (nothing changed); or {0, 'insufficient_funds' |
-- 'amount_too_large' | 'reference_reused'} with nothing changed. Only a movement claims its
-- reference: a refused request leaves it free.
local claim = KEYS[5]
if claim then
  local recorded = redis.call('GET', claim)
  if recorded then
    local request = ARGV[6] .. '|'
    if string.sub(recorded, 1, #request) == request then
      return {2, string.sub(recorded, #request + 1)}
    end
    return {0, 'reference_reused'}
  end
end
local field = ARGV[1] .. ':free'
local free = redis.pcall('HINCRBY', KEYS[1], field, ARGV[2])
if type(free) == 'table' then
  return {0, 'amount_too_large'}
end
if free < 0 then
  redis.call('HINCRBY', KEYS[1], field, negate(ARGV[2]))
  return {0, 'insufficient_funds'}
end
local supply = redis.pcall('HINCRBY', KEYS[2], ARGV[1], ARGV[2])
if type(supply) == 'table' then
  redis.call('HINCRBY', KEYS[1], field, negate(ARGV[2]))
  return {0, 'amount_too_large'}
end
-- 1024 a millisecond: ledger.numbers.FUNDS_SEQS_PER_MS
local seq = next_number(KEYS[4], 1024)
-- The entry's field names are xch.wire's FUNDS_* constants (FundsEntry), which dbproc and ws read.
redis.call('XADD', KEYS[3], '*', 's', seq, 'u', ARGV[3], 'a', ARGV[1], 'n', ARGV[2],
  'r', ARGV[4], 't', ARGV[5])
local balance = redis.call('HGET', KEYS[1], field)
if claim then
  redis.call('SET', claim, ARGV[6] .. '|' .. balance, 'EX', ARGV[7])
end
return {1, balance}
