#include "policies/rate_limit/redis_script.h"

namespace gatehouse::policies::rate_limit {
namespace {

// Run atomically by Redis. KEYS: one per limit. ARGV[1]: tokens wanted (1; a batch in mode
// hybrid; 0 = only report; -1 = delete the keys), then three per limit: kind (1 token bucket /
// GCRA, 2 sliding window, 3 calendar count: the key names the period), a, b (see the kinds in
// redis_script.h). Redis's own clock (TIME) is the only clock for kinds 1 and 2, so gateways
// with skewed clocks agree. Grants k = min(wanted, what every limit has left) and charges k in
// all limits, or nothing (k = 0): rejected requests are never charged.
// Kind 4 (in-flight cap) needs a request token after the triples (ARGV[3n+2]); want -2
// releases that token. Returns {k, limit index, remaining, reset ms, retry-after ms}; with want
// 0, {available, reset ms} per limit; with want -1 (delete), {number of keys}; -2, {0}.
constexpr std::string_view kScript = R"lua(
local n = #KEYS
local want = tonumber(ARGV[1])
if want == -2 then
  for i = 1, n do
    if tonumber(ARGV[3*i-1]) == 4 then redis.call('ZREM', KEYS[i], ARGV[3*n+2]) end
  end
  return {0}
end
if want < 0 then
  for i = 1, n do redis.call('DEL', KEYS[i]) end
  return {n}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local st = {}
local pk = {}
local k = want
local rej, rej_retry, rej_reset = -1, 0, 0
for i = 1, n do
  local kind, a, b = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i]), tonumber(ARGV[3*i+1])
  local avail, reset, retry
  if kind == 1 then
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    if tat < now then tat = now end
    avail = math.floor((a * b - (tat - now)) / a)
    reset = tat - now
    retry = tat + a - now - a * b
    st[i] = {tat}
  elseif kind == 3 then
    local c = tonumber(redis.call('GET', KEYS[i]) or '0')
    avail = b - c
    reset = a
    retry = a
    st[i] = {c}
  elseif kind == 4 then
    -- In flight: one member per request, scored by its lease's end; expired leases (of a
    -- gateway that died before releasing) are dropped first.
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', string.format('%d', now))
    local c = redis.call('ZCARD', KEYS[i])
    avail = b - c
    reset = 0
    retry = 1000000
    st[i] = {c}
  else
    local w = math.floor(now / a)
    local el = now - w * a
    local v = redis.call('HMGET', KEYS[i], 'w', 'c', 'p')
    local sw, c, p = tonumber(v[1] or '-10'), tonumber(v[2] or '0'), tonumber(v[3] or '0')
    if sw == w - 1 then
      p = c
      c = 0
    elseif sw ~= w then
      p = 0
      c = 0
    end
    avail = math.floor((b * a - p * (a - el) - c * a) / a)
    reset = a - el
    if c + 1 <= b and p > 0 then
      retry = math.max(1, a - math.ceil((b - c - 1) * a / p) - el)
    else
      local e2 = 0
      if c > 0 then e2 = math.max(0, a - math.ceil((b - 1) * a / c)) end
      retry = (a - el) + e2
    end
    st[i] = {w, c, p, el}
  end
  pk[2*i-1] = math.max(0, avail)
  pk[2*i] = math.ceil(reset / 1000)
  if avail < 1 then
    if rej < 0 or retry > rej_retry then
      rej, rej_retry, rej_reset = i - 1, retry, reset
    end
  elseif avail < k then
    k = avail
  end
end
if want == 0 then return pk end
if rej >= 0 then
  return {0, rej, 0, math.ceil(rej_reset / 1000), math.ceil(rej_retry / 1000)}
end
local best, best_rem, best_reset = -1, 0, 0
for i = 1, n do
  local kind, a, b = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i]), tonumber(ARGV[3*i+1])
  local rem, reset
  if kind == 1 then
    local nt = st[i][1] + k * a
    rem = math.floor((a * b - (nt - now)) / a)
    reset = nt - now
    redis.call('SET', KEYS[i], string.format('%d', nt), 'PX',
               string.format('%d', math.ceil(a * b / 1000) + 1000))
  elseif kind == 4 then
    redis.call('ZADD', KEYS[i], string.format('%d', now + a), ARGV[3*n+2])
    redis.call('PEXPIRE', KEYS[i], string.format('%d', math.ceil(a / 1000) + 1000))
    rem = b - st[i][1] - k
    reset = 0
  elseif kind == 3 then
    local c = st[i][1] + k
    rem = b - c
    reset = a
    -- Kept a day past the period's end: gateways whose clocks differ a little still agree.
    redis.call('SET', KEYS[i], string.format('%d', c), 'PX',
               string.format('%d', math.ceil(a / 1000) + 86400000))
  else
    local w, c, p, el = st[i][1], st[i][2] + k, st[i][3], st[i][4]
    rem = math.floor((b * a - p * (a - el) - c * a) / a)
    reset = a - el
    redis.call('HSET', KEYS[i], 'w', string.format('%d', w), 'c', c, 'p', p)
    redis.call('PEXPIRE', KEYS[i], string.format('%d', math.ceil(2 * a / 1000) + 1000))
  end
  if best < 0 or rem < best_rem then
    best, best_rem, best_reset = i - 1, rem, reset
  end
end
return {k, best, best_rem, math.ceil(best_reset / 1000), 0}
)lua";

}  // namespace

std::string_view limitScript() {
  return kScript;
}

}  // namespace gatehouse::policies::rate_limit
