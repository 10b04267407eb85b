/// @file
/// @brief The Lua scripts of the Redis directory (docs/cluster.md, "Scripts"): claim, release,
/// heartbeat with the sweep of lapsed nodes, start, snapshot, re-assert and leave. Plain strings, no
/// dependency: the backplane (redis/redis_backplane.hpp) loads them with EVALSHA/EVAL.
///
/// Every script takes the key prefix (default `sb:`) as `ARGV[1]` and builds its key names from
/// it, so all keys of one cluster live under one prefix. They touch keys they did not declare in
/// `KEYS`: fine on a single Redis (with or without replicas and Sentinel), not on Redis Cluster,
/// whose slots they would cross (docs/cluster.md, "What Redis must be").
///
/// Every change of the directory increments `<prefix>dirseq` and publishes the change on
/// `<prefix>dir` with that number, from inside the script that made it, so a node that loads the
/// snapshot (seq S) and then applies the published changes numbered above S converges on the same
/// state. The messages, one per change, words separated by one space:
/// - `claim <seq> <name> <node> <sid> <incarnation> [<node>/<sid> ...]`: `<node>` (running as
///   `<incarnation>`) holds `<name>` on session `<sid>` (a decimal u64); the optional fields are
///   entries that claim replaced
///   (`session_policy::replace`), to be dropped after the new one is registered.
/// - `release <seq> <name> <node> <sid> <last_seen>`: the entry is gone; `last_seen` the Unix ms
///   of the session's last input, -1 unknown.
/// - `down <seq> <node> <incarnation> <last_seen>`: every entry of `<node>` is gone (its lease
///   lapsed, it started again as a new incarnation, or it left); `last_seen` the Unix ms of the
///   node's last lease renewal (`<prefix>nodeseen`) when it lapsed or restarted, the leave's
///   clock when it left: its users' last seen.
#pragma once

#include <string>

namespace switchboard::redis {

namespace detail {

// Shared by every script: the prefix, the liveness test of an entry, the change log.
// An entry `<node>/<sid>` -> `<incarnation>` counts only while `<prefix>node:<node>` holds that
// incarnation (its lease).
inline constexpr const char* lua_prelude = R"lua(
local P = ARGV[1]
local function live(node, inc)
  return redis.call('GET', P .. 'node:' .. node) == inc
end
local function field_node(f)
  local i = string.find(f, '/', 1, true)
  return string.sub(f, 1, i - 1), string.sub(f, i + 1)
end
local function publish(kind, rest)
  local seq = redis.call('INCR', P .. 'dirseq')
  redis.call('PUBLISH', P .. 'dir', kind .. ' ' .. seq .. ' ' .. rest)
  return seq
end
-- true when `node` still has an entry (any incarnation) in the user hash `ukey`
local function node_has(ukey, node)
  local pre = node .. '/'
  for _, f in ipairs(redis.call('HKEYS', ukey)) do
    if string.sub(f, 1, #pre) == pre then return true end
  end
  return false
end
local function forget(name, field, node)
  local ukey = P .. 'user:' .. name
  redis.call('HDEL', ukey, field)
  if not node_has(ukey, node) then redis.call('SREM', P .. 'nodeusers:' .. node, name) end
end
-- The node (re)took its lease at `now`: it is in the member list, with the time its users were
-- last known to be there (the last seen of a node that crashes after it).
local function renewed(node, inc, now, ttl)
  redis.call('HSET', P .. 'nodes', node, inc)
  redis.call('HSET', P .. 'nodeseen', node, now)
  redis.call('PEXPIRE', P .. 'nodes', ttl)
  redis.call('PEXPIRE', P .. 'nodeseen', ttl)
end
-- A node whose lease lapsed (or that started again): its entries stop counting now (they fail
-- live()), are announced gone in one `down`, and are deleted in slices by later heartbeats.
-- `crashed`: the `down` carries its last renewal as its users' last seen (when it was last
-- known to hold them), else `now` (a node leaving gracefully held them until now).
local function bury(node, inc, now, ttl, crashed)
  local seen = redis.call('HGET', P .. 'nodeseen', node)
  redis.call('HDEL', P .. 'nodeseen', node)
  if crashed and seen then now = seen end
  redis.call('HDEL', P .. 'nodes', node)
  local nu = P .. 'nodeusers:' .. node
  if redis.call('EXISTS', nu) == 1 then
    local g = P .. 'gone:' .. node .. '/' .. inc
    redis.call('RENAME', nu, g)
    redis.call('PEXPIRE', g, ttl)
    redis.call('SADD', P .. 'gone', node .. '/' .. inc)
    redis.call('PEXPIRE', P .. 'gone', ttl)
  end
  publish('down', node .. ' ' .. inc .. ' ' .. now)
end
-- Deletes up to `left` names' entries of buried incarnations (they already fail live()).
local function clean_gone(left)
  for _, g in ipairs(redis.call('SMEMBERS', P .. 'gone')) do
    if left <= 0 then break end
    local gnode, ginc = field_node(g)
    local gk = P .. 'gone:' .. g
    local pre = gnode .. '/'
    for _, name in ipairs(redis.call('SPOP', gk, left)) do
      left = left - 1
      local ukey = P .. 'user:' .. name
      local flat = redis.call('HGETALL', ukey)
      for j = 1, #flat, 2 do
        if flat[j + 1] == ginc and string.sub(flat[j], 1, #pre) == pre then redis.call('HDEL', ukey, flat[j]) end
      end
    end
    if redis.call('EXISTS', gk) == 0 then redis.call('SREM', P .. 'gone', g) end
  end
end
-- The claim of one entry by a node whose lease was checked: stale entries of `name` (their node
-- lapsed or restarted) are deleted and announced; then the policy decides.
local function claim_one(node, inc, name, sid, policy, max, ttl)
  local ukey = P .. 'user:' .. name
  local me = node .. '/' .. sid
  local flat = redis.call('HGETALL', ukey)
  local others = {}
  for i = 1, #flat, 2 do
    local f, v = flat[i], flat[i + 1]
    local n, s = field_node(f)
    if f == me and v == inc then return 'ok', 0 end
    if f == me or not live(n, v) then
      forget(name, f, n)
      publish('release', name .. ' ' .. n .. ' ' .. s .. ' -1')
    else
      others[#others + 1] = f
    end
  end
  if #others > 0 then
    if policy == 'exclusive' then return 'name_taken', 0 end
    if policy == 'multi' and #others >= max then return 'too_many_sessions', 0 end
  end
  local replaced = ''
  if policy == 'replace' then
    for _, f in ipairs(others) do
      local n = field_node(f)
      forget(name, f, n)
      replaced = replaced .. ' ' .. f
    end
  end
  redis.call('HSET', ukey, me, inc)
  redis.call('PEXPIRE', ukey, ttl)
  redis.call('SADD', P .. 'nodeusers:' .. node, name)
  redis.call('PEXPIRE', P .. 'nodeusers:' .. node, ttl)
  return 'ok', publish('claim', name .. ' ' .. node .. ' ' .. sid .. ' ' .. inc .. replaced)
end
)lua";

inline constexpr const char* lua_claim = R"lua(
-- ARGV: prefix, node, incarnation, name, sid, policy (exclusive|replace|multi), max sessions,
-- directory TTL ms. Returns {result, seq}: result ok, name_taken, too_many_sessions, or lease
-- (the caller's lease is not current: nothing was done).
local node, inc, name, sid = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('GET', P .. 'node:' .. node) ~= inc then return {'lease', 0} end
local r, seq = claim_one(node, inc, name, sid, ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8]))
return {r, seq}
)lua";

inline constexpr const char* lua_release = R"lua(
-- ARGV: prefix, node, incarnation, name, sid, last_seen. Deletes the entry only if it is still
-- this incarnation's (a replace or a sweep may have deleted it already): returns 1, or 0 when
-- there was nothing to delete (then nothing is published).
local node, inc, name, sid = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local me = node .. '/' .. sid
if redis.call('HGET', P .. 'user:' .. name, me) ~= inc then return 0 end
forget(name, me, node)
publish('release', name .. ' ' .. node .. ' ' .. sid .. ' ' .. ARGV[6])
return 1
)lua";

inline constexpr const char* lua_heartbeat = R"lua(
-- ARGV: prefix, node, incarnation, lease ms, directory TTL ms, epoch, now (Unix ms), SSCAN
-- cursor, slice (user keys refreshed and gone entries deleted per call).
-- Returns {'ok', next cursor}, {'lost'} (the node key is missing or holds another incarnation:
-- this incarnation's entries do not count any more; nothing was written), or {'reset', epoch}
-- (Redis lost its data: re-assert).
local node, inc, lease, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local epoch, now, cursor, slice = ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
local ep = redis.call('GET', P .. 'epoch')
if ep ~= epoch then return {'reset', ep or ''} end
local cur = redis.call('GET', P .. 'node:' .. node)
if cur ~= inc then
  if cur then return {'lost', 'taken'} end
  return {'lost', 'lapsed'}
end
redis.call('SET', P .. 'node:' .. node, inc, 'PX', lease)
renewed(node, inc, now, ttl)
for _, k in ipairs({'epoch', 'dirseq', 'nodeusers:' .. node}) do
  redis.call('PEXPIRE', P .. k, ttl)
end
-- the backstop TTL of long-lived users' entries, a slice per beat
local sc = redis.call('SSCAN', P .. 'nodeusers:' .. node, cursor, 'COUNT', math.max(slice, 1))
for _, name in ipairs(sc[2]) do redis.call('PEXPIRE', P .. 'user:' .. name, ttl) end
-- the sweep: a node whose lease lapsed is buried by exactly one heartbeat (scripts are atomic)
local nodes = redis.call('HGETALL', P .. 'nodes')
for i = 1, #nodes, 2 do
  if nodes[i] ~= node and not live(nodes[i], nodes[i + 1]) then bury(nodes[i], nodes[i + 1], now, ttl, true) end
end
clean_gone(slice)
return {'ok', sc[1]}
)lua";

inline constexpr const char* lua_start = R"lua(
-- ARGV: prefix, node, new incarnation, lease ms, directory TTL ms, epoch candidate, now, slice.
-- Takes the node id for the new incarnation: the previous one (crashed, or still running with
-- the same id by mistake: it loses its lease) is buried, and a first slice of its entries
-- deleted at once (all of them for a node with up to `slice` names). Returns {'ok', epoch, seq}.
local node, inc, lease, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local ep = redis.call('GET', P .. 'epoch')
if not ep then
  ep = ARGV[6]
  redis.call('SET', P .. 'epoch', ep, 'PX', ttl)
end
local old = redis.call('HGET', P .. 'nodes', node)
if old and old ~= inc then
  bury(node, old, ARGV[7], ttl, true)
  clean_gone(tonumber(ARGV[8]))
end
redis.call('SET', P .. 'node:' .. node, inc, 'PX', lease)
renewed(node, inc, ARGV[7], ttl)
return {'ok', ep, tonumber(redis.call('GET', P .. 'dirseq') or '0')}
)lua";

inline constexpr const char* lua_snapshot = R"lua(
-- ARGV: prefix. Returns {seq, epoch, name, node, sid, incarnation, name, node, sid, incarnation,
-- ...}: every live entry and the dirseq they are current at (atomic: no change falls between
-- the two), and the epoch ('' when none: a Redis that lost its data, before any node is back).
local out = {tonumber(redis.call('GET', P .. 'dirseq') or '0'), redis.call('GET', P .. 'epoch') or ''}
local nodes = redis.call('HGETALL', P .. 'nodes')
for i = 1, #nodes, 2 do
  local node, inc = nodes[i], nodes[i + 1]
  if live(node, inc) then
    local pre = node .. '/'
    for _, name in ipairs(redis.call('SMEMBERS', P .. 'nodeusers:' .. node)) do
      local flat = redis.call('HGETALL', P .. 'user:' .. name)
      for j = 1, #flat, 2 do
        if flat[j + 1] == inc and string.sub(flat[j], 1, #pre) == pre then
          out[#out + 1] = name
          out[#out + 1] = node
          out[#out + 1] = string.sub(flat[j], #pre + 1)
          out[#out + 1] = inc
        end
      end
    end
  end
end
return out
)lua";

inline constexpr const char* lua_reassert = R"lua(
-- ARGV: prefix, node, incarnation, lease ms, directory TTL ms, epoch candidate, policy, max
-- sessions, now, then the node's local entries as pairs name, sid.
-- After a reconnect (the heartbeat said ok or reset): makes the directory hold exactly these
-- entries for this incarnation. Entries it holds and the list lacks (a claim whose answer was
-- lost) are released; missing ones (Redis restarted empty) are claimed again, never taking a
-- name another node got meanwhile (replace counts as exclusive here: the later claim won).
-- Returns {'ok', epoch, name, sid, ...} with the entries that could not be claimed (close
-- those sessions), or {'lost', epoch} when another incarnation holds the node id.
local node, inc, lease, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local policy, max, now = ARGV[7], tonumber(ARGV[8]), ARGV[9]
local ep = redis.call('GET', P .. 'epoch')
if not ep then
  ep = ARGV[6]
  redis.call('SET', P .. 'epoch', ep, 'PX', ttl)
end
local cur = redis.call('GET', P .. 'node:' .. node)
if cur and cur ~= inc then return {'lost', ep} end
redis.call('SET', P .. 'node:' .. node, inc, 'PX', lease)
renewed(node, inc, now, ttl)
if policy == 'replace' then policy = 'exclusive' end
local want = {}
for i = 10, #ARGV, 2 do want[node .. '/' .. ARGV[i + 1]] = true end
local pre = node .. '/'
for _, name in ipairs(redis.call('SMEMBERS', P .. 'nodeusers:' .. node)) do
  local flat = redis.call('HGETALL', P .. 'user:' .. name)
  for j = 1, #flat, 2 do
    local f = flat[j]
    if flat[j + 1] == inc and string.sub(f, 1, #pre) == pre and not want[f] then
      forget(name, f, node)
      publish('release', name .. ' ' .. node .. ' ' .. string.sub(f, #pre + 1) .. ' ' .. now)
    end
  end
end
local out = {'ok', ep}
for i = 10, #ARGV, 2 do
  local r = claim_one(node, inc, ARGV[i], ARGV[i + 1], policy, max, ttl)
  if r ~= 'ok' then
    out[#out + 1] = ARGV[i]
    out[#out + 1] = ARGV[i + 1]
  end
end
return out
)lua";

inline constexpr const char* lua_leave = R"lua(
-- ARGV: prefix, node, incarnation, now, directory TTL ms. A node stopping gracefully: its lease
-- ends now and its entries go at once (one `down`), instead of a lease later. Returns 1, or 0
-- when the node id is not this incarnation's any more (nothing done).
local node, inc = ARGV[2], ARGV[3]
if redis.call('GET', P .. 'node:' .. node) ~= inc then return 0 end
redis.call('DEL', P .. 'node:' .. node)
bury(node, inc, ARGV[4], tonumber(ARGV[5]), false)
return 1
)lua";

} // namespace detail

/// @brief The source of each directory script: the shared prelude (helpers) followed by the
/// script's body. docs/cluster.md, "Scripts", describes their arguments and results.
struct directory_scripts {
    std::string claim;     ///< Claims a name for a session under a policy, after checking the caller's lease.
    std::string release;   ///< Deletes a session's entry if it is still this incarnation's.
    std::string heartbeat; ///< Renews the lease, refreshes TTLs, sweeps lapsed nodes.
    std::string start;     ///< Takes the node id for a new incarnation, burying the previous one.
    std::string snapshot;  ///< Every live entry and the dirseq it is current at.
    std::string reassert;  ///< After a reconnect: the directory holds exactly the node's local entries.
    std::string leave;     ///< A graceful stop: ends the lease and buries the node's entries at once.

    /// @brief The scripts, built once (thread-safe initialisation of a function-local static).
    /// @return the same object on every call.
    [[nodiscard]] static const directory_scripts& get() {
        static const directory_scripts s{
            std::string(detail::lua_prelude) + detail::lua_claim,
            std::string(detail::lua_prelude) + detail::lua_release,
            std::string(detail::lua_prelude) + detail::lua_heartbeat,
            std::string(detail::lua_prelude) + detail::lua_start,
            std::string(detail::lua_prelude) + detail::lua_snapshot,
            std::string(detail::lua_prelude) + detail::lua_reassert,
            std::string(detail::lua_prelude) + detail::lua_leave,
        };
        return s;
    }
};

} // namespace switchboard::redis
