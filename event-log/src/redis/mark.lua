-- Stores a market mark if it is newer than the stored one, and notifies the
-- symbol's followers (docs/redis.md, "Market marks").
-- KEYS[1]: the symbol's mark hash (`ms`, `json`)
-- ARGV[1]: the mark's timestamp, Unix milliseconds
-- ARGV[2]: the mark's JSON
-- ARGV[3]: the symbol's mark channel
-- Returns 1 when stored, 0 when the stored mark is as new or newer.
local stored = redis.call('HGET', KEYS[1], 'ms')
if stored and tonumber(stored) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'ms', ARGV[1], 'json', ARGV[2])
redis.call('SPUBLISH', ARGV[3], ARGV[2])
return 1
