"""The account budget kept in Redis: one atomic Lua script decides every slot, on Redis' own clock.

Why a script and Redis' clock: replicas on different machines have different clocks and race each other;
a script reads the account's state, decides and records the slot in one atomic step, and `TIME` inside
it gives every replica the same "now". The arithmetic is `SlotSchedule`'s (see `pacing`), the same rules
N replicas must keep together that one process keeps alone:

* any two requests at least ``any_spacing`` apart; bulk POSTs at least ``bulk_spacing`` apart; "other"
  requests in a GCRA lane of ``other_spacing`` (tolerance one interval); everything after ``blocked_until``
  (the shared pause any replica sets from a 429 Retry-After or a bulk "Rate limit exceeded");
* a waiting bulk POST is never delayed by an "other" (or "read": the same lane) request. Replicas announce
  a waiting bulk POST in a sorted set (score = when the announcement lapses, a little after its slot), so
  a replica whose only waiter is a poll knows that another replica's POST is due and leaves that slot free;
* slots are recorded on the grid (late by at most ``grace``), as `SlotSchedule.grant` does.

The answer is "granted at slot T" or "retry in N us". A grant may lie up to ``lead`` in the future: the
caller sleeps until it locally. Asking a little early and being handed the exact slot keeps the grid exact
despite the round trip; without it every grant would land a round trip late and throughput would leak.
Times are integer microseconds (doubles hold them exactly); they are written with ``%.0f`` because Lua's
default number formatting keeps only 14 digits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from worker.activecampaign.pacing import RequestKind, SlotSchedule

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["BudgetScript", "Decision"]

_US = 1_000_000
#: How long a waiting bulk POST's announcement outlives its slot: covers a waiter that wakes late, and
#: bounds how long a crashed replica's announcement can keep polls out of a slot.
ANNOUNCE_SECONDS = 1.0
#: An idle account's state expires after this (longer than AC's 60 s window, so nothing is forgotten early).
IDLE_SECONDS = 180.0

_GRANT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local kind = ARGV[1]
local any, bulk, other = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local grace, lead = tonumber(ARGV[5]), tonumber(ARGV[6])
local waiter, local_bulk = ARGV[7], ARGV[8] == '1'
local announce, idle_ms = tonumber(ARGV[9]), tonumber(ARGV[10])
local NEVER = -1e18
local s = redis.call('HMGET', KEYS[1], 'last_any', 'bulk_next', 'other_tat', 'blocked_until')
local last_any = tonumber(s[1]) or NEVER
local bulk_next = tonumber(s[2]) or NEVER
local other_tat = tonumber(s[3]) or NEVER
local blocked = tonumber(s[4]) or NEVER
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)

local function recorded(slot)
  if slot >= now - grace then return slot end
  return now
end

local base = math.max(last_any + any, blocked)
local bulk_slot = math.max(base, bulk_next)
local slot = bulk_slot
if kind ~= 'bulk' then
  slot = math.max(base, other_tat - other)
  if local_bulk or redis.call('ZCARD', KEYS[2]) > 0 then
    local bulk_at = recorded(bulk_slot)
    if recorded(slot) + any > bulk_at + 1 then slot = math.max(slot, bulk_at + any) end
  end
end

if slot > now + lead then
  if kind == 'bulk' then
    redis.call('ZADD', KEYS[2], string.format('%.0f', slot + announce), waiter)
    local keep = math.ceil((slot + announce - now) / 1000) + 1000
    if redis.call('PTTL', KEYS[2]) < keep then redis.call('PEXPIRE', KEYS[2], keep) end
  end
  return {0, math.ceil(slot - now), 0}
end

local at = recorded(slot)
last_any = math.max(last_any, at)
if kind == 'bulk' then
  bulk_next = at + bulk
  redis.call('ZREM', KEYS[2], waiter)
else
  other_tat = math.max(other_tat, at) + other
end
redis.call('HSET', KEYS[1], 'last_any', string.format('%.0f', last_any),
  'bulk_next', string.format('%.0f', bulk_next), 'other_tat', string.format('%.0f', other_tat))
redis.call('PEXPIRE', KEYS[1], idle_ms + math.ceil(math.max(0, blocked - now) / 1000))
return {1, math.floor(at - now), string.format('%.0f', at)}
"""

_BLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_ = now + tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'blocked_until')) or -1e18
if until_ > current then
  redis.call('HSET', KEYS[1], 'blocked_until', string.format('%.0f', until_))
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + math.ceil((until_ - now) / 1000))
end
return 1
"""


@dataclass(frozen=True)
class Decision:
    """The script's answer. Granted: sleep ``wait`` (<= lead) then send; the slot was ``slot_us`` on Redis'
    clock. Refused: ask again in ``wait`` seconds."""

    granted: bool
    wait: float
    slot_us: int = 0


class BudgetScript:
    """The two scripts for one account's keys, with the account's spacings as arguments."""

    def __init__(self, schedule: SlotSchedule, *, state_key: str, waiters_key: str, waiter_id: str) -> None:
        self.state_key = state_key
        self.waiters_key = waiters_key
        self._waiter_id = waiter_id
        # Ask up to this early: half a request spacing, and never so much that a poll granted ahead of
        # time could noticeably delay a POST that shows up meanwhile.
        lead = min(schedule.any_spacing / 2, 0.025)
        self._args = [
            _micros(schedule.any_spacing),
            _micros(schedule.bulk_spacing),
            _micros(schedule.other_spacing),
            _micros(schedule.grace),
            _micros(lead),
        ]

    async def decide(self, client: Redis, kind: RequestKind, *, bulk_waiting_here: bool) -> Decision:
        """One atomic look at the account: grant a slot of ``kind`` or say when to ask again."""
        args = [kind, *self._args, self._waiter_id, "1" if bulk_waiting_here else "0",
                _micros(ANNOUNCE_SECONDS), str(int(IDLE_SECONDS * 1000))]
        reply = await _run(client, _GRANT, _GRANT_SHA, [self.state_key, self.waiters_key], args)
        granted, wait_us, slot = reply
        return Decision(bool(int(granted)), max(0, int(wait_us)) / _US, int(slot))

    async def block(self, client: Redis, seconds: float) -> None:
        """Nobody, on any replica, gets a slot for ``seconds`` from Redis' now (only ever extends a pause)."""
        await _run(client, _BLOCK, _BLOCK_SHA, [self.state_key],
                   [_micros(seconds), str(int(IDLE_SECONDS * 1000))])


def _micros(seconds: float) -> str:
    return str(round(seconds * _US))


def _sha(source: str) -> str:
    return hashlib.sha1(source.encode()).hexdigest()


_GRANT_SHA = _sha(_GRANT)
_BLOCK_SHA = _sha(_BLOCK)


async def _run(client: Redis, source: str, sha: str, keys: list[str], args: list[str]) -> Any:
    """EVALSHA, loading the script when Redis does not know it (first use, or after a restart)."""
    from redis.exceptions import NoScriptError

    try:
        return await client.evalsha(sha, len(keys), *keys, *args)
    except NoScriptError:
        return await client.eval(source, len(keys), *keys, *args)
