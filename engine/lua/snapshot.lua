-- Store the engine's snapshot and drop the input and batch records it makes unnecessary.
-- KEYS[1] lease, KEYS[2] snapshot, KEYS[3] input stream, KEYS[4] batches list
-- ARGV[1] fencing token, ARGV[2] snapshot value, ARGV[3] the input id it covers,
-- ARGV[4] how many batch records (from the left) it covers
-- Returns 'ok' or 'fenced' (nothing written).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 'fenced'
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('XTRIM', KEYS[3], 'MINID', ARGV[3])
redis.call('LTRIM', KEYS[4], ARGV[4], -1)
return 'ok'
