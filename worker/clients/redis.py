"""One Redis client per URL per event loop, with timeouts that never let a caller hang on a dead socket.

Why shared: every limiter and lease of a process talks to the same Redis; one connection pool per URL
keeps the connection count at "a few per replica" however many accounts and exports there are. Why per
event loop: an asyncio connection belongs to the loop that opened it (the CLI's `sync` and tests run
several loops one after the other), so a client is never handed to a loop it was not made in.

Why short timeouts and a single retry: the limiter asks Redis before every ActiveCampaign request, so a
stalled Redis must turn into "fall back to the local share" within a second or two, not after the
client's default of retrying with backoff. One immediate retry still hides a pooled connection that
Redis closed while idle (a restart).

Redis is imported inside the functions: without `redis_url` nothing here is ever loaded.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "check_redis_url",
    "close_redis_clients",
    "redact_url",
    "redis_client",
    "redis_failures",
]

#: Seconds to connect, and to wait for any one reply.
SOCKET_TIMEOUT = 1.5

_SCHEMES = ("redis", "rediss", "unix")
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Redis]] = weakref.WeakKeyDictionary()

def redis_failures() -> tuple[type[BaseException], ...]:
    """Exception types that mean "Redis did not answer usefully": its errors, socket errors, timeouts."""
    from redis.exceptions import RedisError

    return (RedisError, OSError, TimeoutError, EOFError)


def check_redis_url(url: str) -> str:
    """``url`` if it names a Redis (redis://, rediss://, unix://); else ValueError naming the fix."""
    scheme = urlsplit(url).scheme.lower() if isinstance(url, str) else ""
    if scheme not in _SCHEMES:
        raise ValueError(
            f"redis_url {redact_url(str(url))!r} is not a Redis URL: use redis://host:port/db, "
            "rediss://host:port/db (TLS) or unix:///path/to/redis.sock"
        )
    return url


def redact_url(url: str) -> str:
    """The URL with any password (userinfo or ``?password=``) replaced by ``***``, for logs and errors."""
    redacted = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^@/]*)@", _mask_userinfo, url)
    return re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", redacted)


def _mask_userinfo(match: re.Match[str]) -> str:
    user, sep, _ = match.group(2).partition(":")
    return f"{match.group(1)}{user}{':***' if sep else ''}@" if user or sep else match.group(0)


def redis_client(url: str) -> Redis:
    """The running loop's client for ``url`` (created on first use; connecting happens on the first call)."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    client = per_loop.get(url)
    if client is None:
        options: dict[str, Any] = {
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": SOCKET_TIMEOUT,
            "retry": Retry(NoBackoff(), 1),
        }
        client = Redis.from_url(check_redis_url(url), **options)
        per_loop[url] = client
    return client


async def close_redis_clients() -> None:
    """Close the running loop's clients (at shutdown); the next `redis_client` call makes a new one."""
    per_loop = _clients.pop(asyncio.get_running_loop(), {})
    for client in per_loop.values():
        await client.aclose()
