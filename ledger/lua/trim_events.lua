-- Trim a market's events stream towards its cap, never past what the storage consumer group
-- still needs: the group's oldest pending (read, unacknowledged) entry, or, with none pending,
-- the last entry it was given. Without the group (storage not provisioned yet) nothing goes.
-- KEYS[1] events stream
-- ARGV[1] the storage consumer group, ARGV[2] the cap (entries kept at least)
-- Returns {entries trimmed, entries the group has not acknowledged (-1: no group, or Redis
-- cannot count them)}.
local length = redis.call('XLEN', KEYS[1])
if length == 0 then
  return {0, 0}
end
local group
for _, row in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #row, 2 do
    info[row[i]] = row[i + 1]
  end
  if info['name'] == ARGV[1] then
    group = info
  end
end
if not group then
  return {0, -1}
end
local unstored = -1
if group['lag'] then
  unstored = group['lag'] + group['pending']
end
local excess = length - tonumber(ARGV[2])
if excess <= 0 then
  return {0, unstored}
end
local keep_from = group['last-delivered-id']
if group['pending'] > 0 then
  keep_from = redis.call('XPENDING', KEYS[1], ARGV[1])[2]
end
-- MINID never drops keep_from or anything after it; LIMIT never drops more than the excess,
-- so the cap still holds when storage is far ahead.
local trimmed = redis.call('XTRIM', KEYS[1], 'MINID', '~', keep_from, 'LIMIT', excess)
return {trimmed, unstored}
