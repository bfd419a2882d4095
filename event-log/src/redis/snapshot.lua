-- Reads one user's state with the seq and epoch it reflects, atomically.
-- KEYS: 1 meta, 2 positions, 3 orders, 4 account, 5 trades
-- Returns {seq, epoch|false, {position...}, {order...}, account|false, {trade...}}

local meta = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
return {
  tonumber(meta[1] or '0'),
  meta[2],
  redis.call('HVALS', KEYS[2]),
  redis.call('HVALS', KEYS[3]),
  redis.call('GET', KEYS[4]),
  redis.call('LRANGE', KEYS[5], 0, -1),
}
