-- Reads one user's state with the seq and epoch it reflects, atomically.
-- A user with no history yet gets its epoch now (ARGV[1]), so a reader
-- holds an epoch to resume with from its very first snapshot; the first
-- publish keeps it.
-- KEYS: 1 meta, 2 positions, 3 orders, 4 account, 5 trades
-- ARGV: 1 the epoch to start with if there is none
-- Returns {seq, epoch, {position...}, {order...}, account|false, {trade...}}

local meta = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
local epoch = meta[2]
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
return {
  tonumber(meta[1] or '0'),
  epoch,
  redis.call('HVALS', KEYS[2]),
  redis.call('HVALS', KEYS[3]),
  redis.call('GET', KEYS[4]),
  redis.call('LRANGE', KEYS[5], 0, -1),
}
