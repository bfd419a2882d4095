-- Publishes one event of one user atomically (BRIEF §2).
-- KEYS: 1 meta, 2 events, 3 positions, 4 orders, 5 account, 6 trades, 7 dedupe
-- ARGV: 1 head `{"type":"…",`, 2 rest `"timestamp":…,"data":`, 3 data JSON,
--       4 effect (p|o|a|t), 5 field (symbol or order id), 6 remove (1|0),
--       7 stream maxlen, 8 dedupe ttl (s), 9 epoch for a new history,
--       10 notify channel, 11 trades kept, 12 defer the notice (1|0)
-- Returns {1, seq, epoch} when published, {0, seq, epoch} for a duplicate.
-- With the notice deferred (the caller waits for replicas first, then sends
-- it), nothing is published on the channel and the notice comes back as a
-- fourth element: for a new event always, for a duplicate when its event is
-- still in the stream (a retry after a refused wait sends it then).
-- Every check comes before the first write: a script that fails midway
-- would leave its earlier writes in place.

local epoch = redis.call('HGET', KEYS[1], 'epoch')
local dup = redis.call('GET', KEYS[7])
local defer = ARGV[12] == '1'
if dup and epoch then
  if defer then
    local entry = redis.call('XRANGE', KEYS[2], dup .. '-0', dup .. '-0')
    if entry[1] then
      return {0, tonumber(dup), epoch, epoch .. ' ' .. dup .. ' ' .. entry[1][2][2]}
    end
  end
  return {0, tonumber(dup), epoch}
end
if not epoch then
  -- A new history (first event, or the old one was lost): drop any stream
  -- remnant so that seq 1 can be appended.
  epoch = ARGV[9]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end

local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
-- Formatted once: every number-to-text conversion in Lua is a sprintf.
local seqtext = tostring(seq)
local event = ARGV[1] .. '"seq":' .. seqtext .. ',' .. ARGV[2] .. ARGV[3] .. '}'
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], seqtext .. '-0', 'e', event)

local effect = ARGV[4]
if effect == 'p' or effect == 'o' then
  local hash = KEYS[3]
  if effect == 'o' then hash = KEYS[4] end
  if ARGV[6] == '1' then
    redis.call('HDEL', hash, ARGV[5])
  else
    redis.call('HSET', hash, ARGV[5], ARGV[3])
  end
elseif effect == 'a' then
  redis.call('SET', KEYS[5], ARGV[3])
else
  redis.call('LPUSH', KEYS[6], ARGV[3])
  redis.call('LTRIM', KEYS[6], 0, tonumber(ARGV[11]) - 1)
end

redis.call('SET', KEYS[7], seqtext, 'EX', ARGV[8])
local notice = epoch .. ' ' .. seqtext .. ' ' .. event
if defer then
  return {1, seq, epoch, notice}
end
redis.call('SPUBLISH', ARGV[10], notice)
return {1, seq, epoch}
