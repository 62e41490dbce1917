"""The Lua scripts a node runs in Redis, each one atomic there.

Keys and arguments are described per script; :mod:`server.cluster.redis_cluster`
says what each key holds. A script that names a key it builds from an argument
(``ADOPT`` looks up the node's heartbeat key) assumes one Redis, not a Redis
Cluster, as the rest of the node does.
"""

from __future__ import annotations

__all__ = ["ADOPT", "ATTACH", "IF_MINE", "REAP", "ROOM_CLOSED", "ROOM_SAVED"]

ATTACH = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', KEYS[2], ARGV[3])
return old
"""
"""Set the user's node and status; return what was there (to tell that node).
KEYS: users, presence channel. ARGV: user id, ``node\\tstatus``, message."""

IF_MINE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current or string.sub(current, 1, #ARGV[2]) ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
redis.call('PUBLISH', KEYS[2], ARGV[4])
return 1
"""
"""Change (or, with an empty value, remove) the user's entry only while it is
still this node's: a login on another node may have taken it meanwhile.
KEYS: users, presence channel. ARGV: user id, ``node\\t``, value, message."""

ROOM_SAVED = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('SET', KEYS[2], ARGV[3])
end
return 0
"""
"""Keep a room's record while the room is still this node's (a node that was
taken for dead must not overwrite the record of the node that took over).
KEYS: rooms, the room's record. ARGV: room id, node id, record."""

ROOM_CLOSED = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
end
return 0
"""
"""Forget a room and its record only while it is still this node's.
KEYS: rooms, the room's record. ARGV: room id, node id."""

REAP = """
local gone = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if string.sub(all[i + 1], 1, #ARGV[1]) == ARGV[1] then
    redis.call('HDEL', KEYS[1], all[i])
    table.insert(gone, all[i])
  end
end
redis.call('SREM', KEYS[2], ARGV[2])
local rooms = redis.call('HGETALL', KEYS[3])
for i = 1, #rooms, 2 do
  if rooms[i + 1] == ARGV[2] then
    redis.call('HDEL', KEYS[3], rooms[i])
    redis.call('PEXPIRE', ARGV[3] .. rooms[i], ARGV[4])
  end
end
return gone
"""
"""Remove a dead node and its users; its rooms' records wait a while for a
takeover. Returns the users removed.
KEYS: users, nodes, rooms. ARGV: ``node\\t``, node id, record key prefix,
how long a record waits (ms)."""

ADOPT = """
local node = redis.call('HGET', KEYS[1], ARGV[1])
if node and node ~= ARGV[2] and redis.call('EXISTS', ARGV[3] .. node) == 1 then
  return false
end
local record = redis.call('GET', KEYS[2])
if not record then return false end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PERSIST', KEYS[2])
return record
"""
"""Take a room over unless its node is alive: its record, or nil.
KEYS: rooms, the room's record. ARGV: room id, node id, heartbeat key prefix."""
