"""The simulated account's clock and ActiveCampaign's two timestamp spellings.

AC stamps records two ways: `cdate`/`udate`/`sdate` as ISO 8601 with the account's offset
("2021-04-08T11:17:44-05:00") and `created_timestamp`/`updated_timestamp` as "2021-04-08 11:17:44". The
simulated account's zone is UTC, and stamps have whole seconds, as AC's do, so what a reader sees is
exactly what the filters compare. The clock can be frozen (`SimSettings.frozen_time`) so tests of
incremental readers give records distinct, known times without sleeping.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

#: A '+' in an unencoded query string arrives as a space ("...T10:00:00 02:00"); AC's own examples and
#: several taps send offsets unencoded, so that one spelling is read as the '+' it was.
_SPACED_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


def parse_instant(text: str) -> datetime:
    """An aware datetime from an ISO 8601 date or date-time (offset optional: naive means the account's
    zone, UTC); ValueError naming the accepted forms otherwise."""
    value = _SPACED_OFFSET.sub(r"\1+\2", text.strip())
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date or date-time; use YYYY-MM-DD, 'YYYY-MM-DD HH:MM:SS' (UTC) or ISO 8601 "
            "with an offset such as 2024-05-01T10:00:00Z (percent-encode '+' as %2B)"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def current(frozen: str | None) -> datetime:
    """Now in UTC to the second, or the frozen instant when the clock is frozen."""
    if frozen is not None:
        return parse_instant(frozen).astimezone(UTC).replace(microsecond=0)
    return datetime.now(UTC).replace(microsecond=0)


def iso(stamp: datetime | None) -> str | None:
    """`cdate`-style: "2024-05-01T10:00:00+00:00" (None stays null, as AC sends unset dates)."""
    return stamp.isoformat() if stamp is not None else None


def plain(stamp: datetime | None) -> str | None:
    """`created_timestamp`-style: "2024-05-01 10:00:00" in the account's zone (UTC)."""
    return stamp.strftime("%Y-%m-%d %H:%M:%S") if stamp is not None else None
