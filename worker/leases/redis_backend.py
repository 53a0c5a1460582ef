"""Leases in Redis: ``SET NX PX`` to take, Lua check-and-extend to renew, check-and-delete to release.

Why scripts: "is it still mine? then extend it" must be one atomic step, or a renewal could extend a lease
that expired and was taken by another replica in between. The value is this holder's unique identity
(owner + a random part), so two holders with the same owner name never mistake each other.

Tokens come from INCR of a per-export counter that never expires. A counter that does not exist yet
(first use, or a Redis restart without persistence) starts at Redis' clock in milliseconds, so tokens
stay strictly increasing across such a restart as long as an export is leased less than once per
millisecond on average.

A Redis restart without persistence loses the lease key while its holder still runs. Renewal then
re-takes it (SET NX) if nobody else took it meanwhile and no newer token was handed out; otherwise the
lease is lost.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from worker.clients.redis import redis_client, redis_failures
from worker.leases.lease import Grant, LeaseUnavailable, Renewal

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["DEFAULT_KEY_PREFIX", "RedisLeases"]

log = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "segment-export:lease:"

_ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
if redis.call('EXISTS', KEYS[2]) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[2], string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)))
end
return redis.call('INCR', KEYS[2])
"""

_RENEW = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if held then return 0 end
local counter = tonumber(redis.call('GET', KEYS[2]) or '0')
local token = tonumber(ARGV[3])
if counter > token then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if counter < token then redis.call('SET', KEYS[2], ARGV[3]) end
return 2
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLeases:
    """The lease `Backend` on Redis."""

    name = "redis"

    def __init__(self, url: str, owner: str, *, key_prefix: str = DEFAULT_KEY_PREFIX) -> None:
        self._url = url
        self._owner = owner
        self._prefix = key_prefix

    def _keys(self, export: str) -> list[str]:
        key = f"{self._prefix}{{{export}}}"  # braces: lease and counter in one Redis Cluster slot
        return [key, f"{key}:token"]

    async def _call(self, script: str, export: str, *args: str) -> Any:
        client: Redis = redis_client(self._url)
        keys = self._keys(export)
        try:
            return await client.eval(script, len(keys), *keys, *args)
        except redis_failures() as exc:
            raise LeaseUnavailable(f"Redis did not answer ({type(exc).__name__})") from None

    async def try_acquire(self, export: str, ttl: float) -> Grant | None:
        holder = f"{self._owner}/{uuid.uuid4().hex}"
        token = await self._call(_ACQUIRE, export, holder, _millis(ttl))
        return None if token is None else Grant(int(token), holder)

    async def renew(self, export: str, grant: Grant, ttl: float) -> Renewal:
        answer = int(await self._call(_RENEW, export, grant.holder, _millis(ttl), str(grant.token)))
        if answer == 2:
            log.warning("lease on export %s (token %d): Redis had lost it (a restart without persistence?); "
                        "taken again, nobody else held it", export, grant.token)
        return "lost" if answer == 0 else "renewed"

    async def release(self, export: str, grant: Grant) -> None:
        await self._call(_RELEASE, export, grant.holder)


def _millis(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))
