-- The single-writer lease of a market's engine, who holds it and what the holder reports.
-- KEYS[1] lease, KEYS[2] fence counter, KEYS[3] holder (the holding engine's Pod),
-- KEYS[4] the holder's trading state as of its last commit (KEYS[3] and KEYS[4]: for status)
-- ARGV[1] 'acquire' | 'renew' | 'release', ARGV[2] ttl in ms, ARGV[3] token (renew, release),
-- ARGV[4] holder name (acquire, renew), ARGV[5] trading state (renew; '' while not known)
-- acquire: a new token (larger than every earlier one) or 0 while someone else holds it.
-- renew: 1 if still held with this token (ttl reset), else 0. release: 1 if released, else 0.
-- The holder and trading keys live and die with the lease (same TTL, deleted on release);
-- each renewal sets them again, so a lease taken by an engine that wrote neither gets them
-- at its next renewal.
local op = ARGV[1]
if op == 'acquire' then
  if redis.call('EXISTS', KEYS[1]) == 1 then
    return 0
  end
  local token = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
  redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[2])
  return token
end
if redis.call('GET', KEYS[1]) ~= ARGV[3] then
  return 0
end
if op == 'renew' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[2])
  if ARGV[5] ~= '' then
    redis.call('SET', KEYS[4], ARGV[5], 'PX', ARGV[2])
  end
else
  redis.call('DEL', KEYS[1], KEYS[3], KEYS[4])
end
return 1
