"""make_limiter: the engine's one call for an account's limiter, in-process or shared through Redis.

Why a factory: the engine should not know which limiter it gets. Without ``redis_url`` a replica is
assumed alone (the in-process `AccountLimiter`); with it every replica draws from one budget in Redis
(`SharedLimiter`) and falls back to ``1/expected_replicas`` of the budget while Redis is unreachable.
"""

from __future__ import annotations

from worker.activecampaign.limiter import AccountLimiter, RateLimiter
from worker.activecampaign.shared_limiter import DEFAULT_KEY_PREFIX, OnDegraded, SharedLimiter
from worker.clients.redis import check_redis_url

__all__ = ["make_limiter"]


def make_limiter(
    *,
    connection_name: str,
    hostname: str,
    requests_per_second: float,
    bulk_per_minute: float,
    redis_url: str | None,
    expected_replicas: int,
    on_degraded: OnDegraded | None = None,
    key_prefix: str = DEFAULT_KEY_PREFIX,
) -> RateLimiter:
    """The limiter for one account (``hostname``; never keyed by the API key).

    ``on_degraded(connection_name, degraded)`` is called when a shared limiter falls back to its local
    share (True) and when it returns to the shared budget (False); never for an in-process limiter.
    Raises ValueError for a URL that is not a Redis URL or expected_replicas < 1.
    """
    if not redis_url:
        return AccountLimiter(requests_per_second, bulk_per_minute)
    return SharedLimiter(
        connection_name=connection_name,
        hostname=hostname,
        requests_per_second=requests_per_second,
        bulk_per_minute=bulk_per_minute,
        redis_url=check_redis_url(redis_url),
        expected_replicas=expected_replicas,
        on_degraded=on_degraded,
        key_prefix=key_prefix,
    )
