-- The engine's batch commit: balance moves, events, applied input id, depth, batch record;
-- all or nothing, and only for the holder of the market's lease.
-- KEYS[1] lease, KEYS[2] applied, KEYS[3] events stream, KEYS[4] depth, KEYS[5] batches list
-- ARGV[1] fencing token
-- ARGV[2] the applied input id this batch follows
-- ARGV[3] the batch's last input id, ARGV[4] its batch record ("<last input id> <seq>")
-- ARGV[5] depth value ('' keeps the current one)
-- ARGV[6] the batch's events, one stream entry ('' for none). The stream is not capped here:
--   the engine trims it apart (trim_events.lua), never past what storage has acknowledged.
-- ARGV[7] the balance moves: a MessagePack array of strings, three per move: balance hash key,
--   field, signed delta. (The balance keys are not declared in KEYS: there are thousands per
--   batch, and the exchange runs on one Redis primary, not a cluster.)
-- ARGV[8] the engine's epoch, the events entry's field `h` (xch.wire.Epoch; '' for none)
-- ARGV[9], ARGV[10], ...: the replies, channel and message in turn, published once everything
--   else is written, so that no reply ever announces an uncommitted result.
-- Returns 'ok'; or, with nothing written: 'fenced' (not the lease holder), 'stale' (applied is
-- not ARGV[2]: this batch was committed already, by a retry of this call), 'negative:<key>:
-- <field>' (a move would make a balance negative), 'overflow:<key>:<field>' (past 64 bits).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 'fenced'
end
if (redis.call('GET', KEYS[2]) or '0-0') ~= ARGV[2] then
  return 'stale'
end
local moves = cmsgpack.unpack(ARGV[7])
for i = 1, #moves, 3 do
  local key, field, delta = moves[i], moves[i + 1], moves[i + 2]
  -- pcall: a failed HINCRBY must not abort the script with earlier moves already written
  local value = redis.pcall('HINCRBY', key, field, delta)
  local failed = type(value) == 'table'
  if failed or value < 0 then
    local last = failed and i - 3 or i
    for j = last, 1, -3 do
      redis.call('HINCRBY', moves[j], moves[j + 1], negate(moves[j + 2]))
    end
    return (failed and 'overflow:' or 'negative:') .. key .. ':' .. field
  end
end
if ARGV[6] ~= '' and ARGV[8] ~= '' then
  redis.call('XADD', KEYS[3], '*', 'e', ARGV[6], 'h', ARGV[8])
elseif ARGV[6] ~= '' then
  redis.call('XADD', KEYS[3], '*', 'e', ARGV[6])
end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('RPUSH', KEYS[5], ARGV[4])
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[4], ARGV[5])
end
for i = 9, #ARGV, 2 do
  redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
end
return 'ok'
