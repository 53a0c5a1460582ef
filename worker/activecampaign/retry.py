"""How long to wait before trying a request again.

Two different situations, two different waits:

* AC said "too fast" (429 with Retry-After, or the bulk "Rate limit exceeded" 400): the wait is AC's (or
  one bulk interval) and applies to the whole account, so it goes to the limiter's `backoff()`;
* AC or the network failed (5xx, timeout, connection reset): exponential backoff with full jitter, for
  this request only, so that many concurrent requests that failed together do not retry together.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

#: Never sleep longer than this on AC's word alone; a bigger value is more likely a bug than a plan.
MAX_RETRY_AFTER = 120.0
#: Used when a 429 carries no usable Retry-After (AC's window is one second).
DEFAULT_RETRY_AFTER = 1.0

_UP_TO = re.compile(
    r"up to\s+(\d+(?:\.\d+)?)\b.*?\bper\s+(?:(minute)|(\d+(?:\.\d+)?)\s*seconds?)", re.IGNORECASE | re.DOTALL
)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), clamped to a sane range."""
    if not value:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return DEFAULT_RETRY_AFTER
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return DEFAULT_RETRY_AFTER
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def bulk_rate_limit_pause(reasons: object, bulk_per_minute: float) -> float:
    """Pause after a bulk "Rate limit exceeded": one bulk interval.

    AC's reason reads "Up to 100 imports may be requested per minute"; when it names a figure we trust it
    (it is the account's real limit, which may be lower than what we pace to), otherwise we use the budget
    we pace to.
    """
    texts = reasons if isinstance(reasons, list) else [reasons]
    for text in texts:
        if isinstance(text, str) and (match := _UP_TO.search(text)):
            count = float(match.group(1))
            window = 60.0 if match.group(2) else float(match.group(3))
            if count > 0 and window > 0:
                return min(window / count, MAX_RETRY_AFTER)
    return min(60.0 / max(bulk_per_minute, 1e-9), MAX_RETRY_AFTER)


def jittered_backoff(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)] (attempt from 0)."""
    ceiling = min(cap, base * (2 ** min(attempt, 30)))
    return (rng or random).uniform(0.0, ceiling)
