-- Lock a command's funds and append it to its market's input stream, in one atomic step.
-- KEYS[1] the user's balance hash, KEYS[2] the market's input stream,
-- KEYS[3] (optional) a claim: set along with the enqueue, unless it is set already
-- ARGV[1] encoded command, ARGV[2] user, ARGV[3] asset to lock ('' for none),
-- ARGV[4] amount to lock in minor units (a non-negative integer string), ARGV[5] reply-to,
-- ARGV[6] the claim's value, ARGV[7] its expiry in seconds (with KEYS[3])
-- Returns {1, stream entry id}, or {0, 'insufficient_funds' | 'overflow'} or, if the claim
-- is set already, {2, its value}, with nothing changed.
local claim = KEYS[3]
if claim then
  local previous = redis.call('GET', claim)
  if previous then
    return {2, previous}
  end
end
local asset, amount = ARGV[3], ARGV[4]
if asset ~= '' and amount ~= '0' then
  local free_field = asset .. ':free'
  local free = redis.call('HINCRBY', KEYS[1], free_field, '-' .. amount)
  if free < 0 then
    redis.call('HINCRBY', KEYS[1], free_field, amount)
    return {0, 'insufficient_funds'}
  end
  local locked = redis.pcall('HINCRBY', KEYS[1], asset .. ':locked', amount)
  if type(locked) == 'table' then
    redis.call('HINCRBY', KEYS[1], free_field, amount)
    return {0, 'overflow'}
  end
end
local id = redis.call('XADD', KEYS[2], '*', 'c', ARGV[1], 'u', ARGV[2], 'a', asset,
                      'l', amount, 'r', ARGV[5])
if claim then
  redis.call('SET', claim, ARGV[6], 'EX', ARGV[7])
end
return {1, id}
