-- Store the engine's snapshot and drop the input and batch records it makes unnecessary.
-- Running it twice (a retry after a lost reply) changes nothing more.
-- KEYS[1] lease, KEYS[2] snapshot, KEYS[3] input stream, KEYS[4] batches list
-- ARGV[1] fencing token, ARGV[2] snapshot value, ARGV[3] the input id it covers
-- Returns 'ok' or 'fenced' (nothing written).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 'fenced'
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('XTRIM', KEYS[3], 'MINID', ARGV[3])
-- batch records are "<last input id> <seq>" in input order: drop those the snapshot covers
while true do
  local record = redis.call('LINDEX', KEYS[4], 0)
  if not record or not stream_id_at_most(string.match(record, '^%S+'), ARGV[3]) then
    break
  end
  redis.call('LPOP', KEYS[4])
end
return 'ok'
