/// @file
/// @brief The Lua scripts of the cluster inbox (`redis::inbox`, redis/redis_inbox.hpp): load,
/// append for a user held on the calling node, append for a user held nowhere (offline), append
/// once by key (a user held on several nodes), remember, and record. Plain strings, no
/// dependency; the store runs them with EVALSHA/EVAL (`connection::eval()`). The data model they work on is described at the top of
/// redis/redis_inbox.hpp.
///
/// Every script takes the key prefix (default `sb:`) as `ARGV[1]` and builds its key names from
/// it, as the directory scripts do (directory_scripts.hpp): they touch keys they do not declare in
/// `KEYS`, which a single Redis (with or without replicas) allows and Redis Cluster does not.
///
/// A script is atomic (nothing runs between its commands) but not transactional: a command that
/// fails half-way leaves the writes before it in place. So the one write that can be refused
/// (`XADD` with an explicit ID) comes first in `store()`, before anything else is changed.
///
/// Numbers: sequence numbers and times travel as decimal strings and are read with `tonumber()`
/// (a double: exact up to 2^53, far above any sequence number or Unix time in ms); they are
/// written back with `%d`, never with Lua's default number format (which switches to an exponent
/// at 10^14).
#pragma once

#include <string>

namespace switchboard::redis {

namespace detail {

// Shared by every inbox script: key names, the fields of an entry, the records, the floor, the
// one place a message is written.
inline constexpr const char* inbox_lua_prelude = R"lua(
local P = ARGV[1]
local function stream_key(user) return P .. 'inbox:' .. user end
local function meta_key(user) return P .. 'inboxmeta:' .. user end
local floor_key = P .. 'inboxfloor'
local function dec(n) return string.format('%d', n) end
-- The value of `name` in an entry's flat field list {f1, v1, f2, v2, ...}.
local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  return nil
end
-- The sequence number of an entry ID `<seq>-0`.
local function seq_of(id) return tonumber(string.match(id, '^(%d+)')) end
-- The highest number given to anyone (the floor), 0 when none was given yet.
local function floor() return tonumber(redis.call('GET', floor_key) or '0') end
-- The highest number given to `user`: its meta, or the floor when the meta is gone (a user that
-- was forgotten continues above every number given to anyone).
local function given(user)
  local v = redis.call('HGET', meta_key(user), 'seq')
  if v then return tonumber(v) end
  return floor()
end
-- Drops, from the front of `user`'s stream, the entries stored `ttl` ms or longer before `now`
-- (the front only: an entry stored later than a fresh one stays, whatever its time), and returns
-- the entries left, as XRANGE gives them.
local function drop_old(user, now, ttl)
  local sk = stream_key(user)
  local all = redis.call('XRANGE', sk, '-', '+')
  local first = #all + 1
  for i, e in ipairs(all) do
    if now - tonumber(field(e[2], 'at') or '0') < ttl then
      first = i
      break
    end
  end
  if first > 1 then
    local minid
    if first <= #all then minid = all[first][1] else minid = dec(seq_of(all[#all][1]) + 1) end
    redis.call('XTRIM', sk, 'MINID', minid)
  end
  local left = {}
  for i = first, #all do left[#left + 1] = all[i] end
  return left
end
-- The entries `all` (as XRANGE gives them) numbered above `after`, as one flat list
-- {id, from, text, at, id, from, text, at, ...}.
local function flatten(all, after)
  local out = {}
  for _, e in ipairs(all) do
    if seq_of(e[1]) > after then
      out[#out + 1] = e[1]
      out[#out + 1] = field(e[2], 'f') or ''
      out[#out + 1] = field(e[2], 't') or ''
      out[#out + 1] = field(e[2], 'at') or '0'
    end
  end
  return out
end
-- True when `user`'s stream holds `max` entries or more, once the expired ones are dropped (the
-- usual case costs one XLEN: they are looked at only when the stream is at its bound).
local function full(user, now, ttl, max)
  if redis.call('XLEN', stream_key(user)) < max then return false end
  return #drop_old(user, now, ttl) >= max
end
-- Pushes one de-duplication record `key at seq queued` on the sender's list (newest first),
-- keeps the newest `window`, and restarts the list's TTL.
local function push_record(sender, rec, window, ttl)
  if window <= 0 then return end
  local rk = P .. 'sent:' .. sender
  redis.call('LPUSH', rk, rec)
  redis.call('LTRIM', rk, 0, window - 1)
  redis.call('PEXPIRE', rk, ttl)
end
-- Stores message `seq` of `user`: the entry (first: the one command that can be refused, when
-- the ID is not above the stream's last one), the user's number, the floor, the sender's record
-- when `key` is not '0', the TTLs.
local function store(user, seq, from, text, at, known_ttl, key, window, dedup_ttl)
  local sk, mk = stream_key(user), meta_key(user)
  redis.call('XADD', sk, dec(seq) .. '-0', 'f', from, 't', text, 'at', at)
  redis.call('HSET', mk, 'seq', dec(seq))
  if seq > floor() then redis.call('SET', floor_key, dec(seq)) end
  redis.call('PEXPIRE', sk, known_ttl)
  redis.call('PEXPIRE', mk, known_ttl)
  if key ~= '0' then push_record(from, key .. ' ' .. at .. ' ' .. dec(seq) .. ' 1', window, dedup_ttl) end
end
)lua";

inline constexpr const char* inbox_lua_load = R"lua(
-- ARGV: prefix, user, now (Unix ms), ttl ms, known ttl ms, dedup window, after.
-- A node takes `user` (one of its sessions registered): makes the user known if it is not (its
-- number continues above the floor), drops the expired entries from the front, and returns
-- {seq, {id, from, text, at, id, from, text, at, ...}, {record, ...}, first}: the highest number
-- given to the user (a string), the entries left above number `after` (0: all) in order, the
-- newest `window` de-duplication records the user sent, newest first, and the number of the
-- first entry left (seq + 1 when none is left: everything below it was acknowledged or expired).
local user, now, ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local known_ttl, window, after = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7] or '0')
local mk = meta_key(user)
local seq = redis.call('HGET', mk, 'seq')
if not seq then
  seq = dec(floor())
  redis.call('HSET', mk, 'seq', seq)
end
redis.call('PEXPIRE', mk, known_ttl)
local left = drop_old(user, now, ttl)
local out = flatten(left, after)
local first = tonumber(seq) + 1
if #left > 0 then first = seq_of(left[1][1]) end
local recs = {}
if window > 0 then recs = redis.call('LRANGE', P .. 'sent:' .. user, 0, window - 1) end
return {seq, out, recs, dec(first)}
)lua";

inline constexpr const char* inbox_lua_append_held = R"lua(
-- ARGV: prefix, user, seq, from, text, at (Unix ms), max per user, ttl ms, known ttl ms,
-- record key ('0': none), dedup window, dedup ttl ms.
-- The calling node holds `user` and chose `seq` (its cache's highest + 1). Stored only when
-- `seq` is above every number given to the user (else another node appended meanwhile) and the
-- stream has room. Returns {'ok', seq}, {'conflict', given} (the highest number given to the
-- user: the caller continues above it) or {'full', given}.
local user, seq = ARGV[2], tonumber(ARGV[3])
local from, text, at = ARGV[4], ARGV[5], ARGV[6]
local max, ttl, known_ttl = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local key, window, dedup_ttl = ARGV[10], tonumber(ARGV[11]), tonumber(ARGV[12])
local have = given(user)
if seq <= have then return {'conflict', have} end
if full(user, tonumber(at), ttl, max) then return {'full', have} end
store(user, seq, from, text, at, known_ttl, key, window, dedup_ttl)
return {'ok', seq}
)lua";

inline constexpr const char* inbox_lua_append_offline = R"lua(
-- ARGV: prefix, user, from, text, at (Unix ms), max per user, ttl ms, known ttl ms, record key
-- ('0': none), dedup window, dedup ttl ms.
-- For a user that no session on the calling node holds: the number is given here. Refused when
-- some node holds a session of the user (its directory entry `<prefix>user:<user>` exists: the
-- message must go to that node), when the user is not known, or when its stream is full.
-- Returns {'ok', seq}, {'held', 0}, {'unknown', 0} or {'full', 0}.
local user, from, text, at = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local max, ttl, known_ttl = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local key, window, dedup_ttl = ARGV[9], tonumber(ARGV[10]), tonumber(ARGV[11])
if redis.call('EXISTS', P .. 'user:' .. user) == 1 then return {'held', 0} end
local v = redis.call('HGET', meta_key(user), 'seq')
if not v then return {'unknown', 0} end
if full(user, tonumber(at), ttl, max) then return {'full', 0} end
local seq = tonumber(v) + 1
store(user, seq, from, text, at, known_ttl, key, window, dedup_ttl)
return {'ok', seq}
)lua";

inline constexpr const char* inbox_lua_append_once = R"lua(
-- ARGV: prefix, user, key, from, text, at (Unix ms), max per user, ttl ms, known ttl ms, after,
-- keys kept, keys ttl ms.
-- A message that several nodes holding sessions of `user` received, each calling this with the
-- message's `key` (`<origin incarnation>:<serial>`): the first call stores it under the user's
-- next number and keeps key -> number in `<prefix>inboxonce:<user>` (a sorted set by number,
-- the newest `keys kept`, TTL `keys ttl`); a later call finds the number and stores nothing.
-- Either way the caller gets what its cache lacks: every entry above `after` (its cache's
-- highest number), and the number of the first entry left (below it, everything was
-- acknowledged or expired). Returns {'ok' or 'dup', seq, given, first, {id, from, text, at,
-- ...}}, or {'full', 0, given, first, {...}}.
local user, key, from, text, at = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local max, ttl, known_ttl = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local after, keep, keys_ttl = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local ok_key = P .. 'inboxonce:' .. user
local word, seq = 'dup', 0
local found = redis.call('ZSCORE', ok_key, key)
if found then
  seq = tonumber(found)
elseif full(user, tonumber(at), ttl, max) then
  word = 'full'
else
  word = 'ok'
  seq = given(user) + 1
  store(user, seq, from, text, at, known_ttl, '0', 0, 0)
  redis.call('ZADD', ok_key, seq, key)
  redis.call('ZREMRANGEBYRANK', ok_key, 0, -(keep + 1))
  redis.call('PEXPIRE', ok_key, keys_ttl)
end
local have, sk = given(user), stream_key(user)
local head = redis.call('XRANGE', sk, '-', '+', 'COUNT', 1)
local first = have + 1
if #head > 0 then first = seq_of(head[1][1]) end
return {word, seq, have, first, flatten(redis.call('XRANGE', sk, dec(after + 1), '+'), after)}
)lua";

inline constexpr const char* inbox_lua_remember = R"lua(
-- ARGV: prefix, user, known ttl ms. Makes `user` known (its meta, numbering above the floor,
-- when it has none) and restarts the meta's TTL. Returns 1.
local mk = meta_key(ARGV[2])
if redis.call('EXISTS', mk) == 0 then redis.call('HSET', mk, 'seq', dec(floor())) end
redis.call('PEXPIRE', mk, tonumber(ARGV[3]))
return 1
)lua";

inline constexpr const char* inbox_lua_record = R"lua(
-- ARGV: prefix, sender, record (`key at seq queued`), dedup window, dedup ttl ms.
-- Pushes one de-duplication record of `sender`. Returns 1.
push_record(ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]))
return 1
)lua";

} // namespace detail

/// @brief The source of each inbox script: the shared prelude (helpers) followed by the script's
/// body. The top of redis/redis_inbox.hpp describes their arguments and results.
struct inbox_scripts {
    std::string load;           ///< A node takes a user: known, expired entries dropped, entries and records returned.
    std::string append_held;    ///< Stores a message under the number the holding node chose, unless another node used it.
    std::string append_offline; ///< Stores a message for a user held nowhere, under the next number.
    std::string append_once;    ///< Stores a message received by several nodes once, by its key; returns what the caller's cache lacks.
    std::string remember;       ///< Makes a user known (above the floor) and restarts its TTL.
    std::string record;         ///< Pushes one de-duplication record of a sender.

    /// @brief The scripts, built once (thread-safe initialisation of a function-local static).
    /// @return the same object on every call.
    [[nodiscard]] static const inbox_scripts& get() {
        static const inbox_scripts s{
            std::string(detail::inbox_lua_prelude) + detail::inbox_lua_load,
            std::string(detail::inbox_lua_prelude) + detail::inbox_lua_append_held,
            std::string(detail::inbox_lua_prelude) + detail::inbox_lua_append_offline,
            std::string(detail::inbox_lua_prelude) + detail::inbox_lua_append_once,
            std::string(detail::inbox_lua_prelude) + detail::inbox_lua_remember,
            std::string(detail::inbox_lua_prelude) + detail::inbox_lua_record,
        };
        return s;
    }
};

} // namespace switchboard::redis
