-- Reads the events of one user after a seq, checked against the reader's epoch.
-- KEYS: 1 meta, 2 events
-- ARGV: 1 after, 2 limit, 3 reader's epoch ('' when it has none)
-- Returns {status, epoch|false, head, id1, json1, id2, json2, ...}
-- with status 'ok', 'old' (trimmed past `after`) or 'epoch' (history changed).

local epoch = redis.call('HGET', KEYS[1], 'epoch')
local head = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local after = tonumber(ARGV[1])
if (ARGV[3] ~= '' and ARGV[3] ~= epoch) or after > head then
  return {'epoch', epoch, head}
end
if after == head then
  return {'ok', epoch, head}
end
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
if not first or tonumber(string.match(first[1], '^(%d+)')) > after + 1 then
  return {'old', epoch, head}
end
local reply = {'ok', epoch, head}
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], (after + 1) .. '-0', '+', 'COUNT', ARGV[2])) do
  reply[#reply + 1] = entry[1]
  reply[#reply + 1] = entry[2][2]
end
return reply
