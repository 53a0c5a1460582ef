"""Points in time from events: order is decided on parsed instants, never on the text.

Why: ``occurred_at`` values come from upstream publishers with any RFC 3339 offset and precision.
Compared as strings, ``2026-11-30T09:00:00Z`` sorts before ``2026-11-30T10:00:00+02:00`` (08:00Z), and
``...:05:00Z`` after ``...:05:00.500Z``; a newer refresh would be dropped as stale.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

MAX_FUTURE_SKEW: Final = timedelta(minutes=10)
"""How far ahead of this worker's clock a refresh instant may be: clocks drift, but a refresh dated later than
this (a publisher's clock bug, a typo) would become the newest refresh recorded and make every genuine
refresh stale until the calendar reaches it. The worker refuses such an event (``future_refresh``), and a
recorded refresh dated this far ahead orders nothing (``refresh_after``), so one recorded by an older version
is replaced by the next genuine refresh."""


class InstantError(ValueError):
    """Text that is not an RFC 3339 date-time with an offset."""


def parse_instant(text: str) -> datetime:
    """An aware UTC datetime from RFC 3339 text (``Z`` or ``+hh:mm``, any fraction of a second)."""
    if not isinstance(text, str):
        raise InstantError(f"expected an RFC 3339 date-time string, got {type(text).__name__}")
    raw = text.strip()
    if len(raw) > 10 and raw[10] in "tT ":
        raw = raw[:10] + "T" + raw[11:]
    if raw.endswith(("z", "Z")):
        raw = raw[:-1] + "+00:00"
    leap = raw[16:19] == ":60"
    if leap:  # RFC 3339 (and the event schema) allow a leap second: read it as the end of second :59
        raw = raw[:17] + "59" + raw[19:]
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InstantError(f"{text[:64]!r} is not an RFC 3339 date-time (e.g. 2026-11-30T09:00:00Z)") from None
    if value.tzinfo is None:
        raise InstantError(f"{text[:64]!r} has no offset; RFC 3339 needs one (Z or +hh:mm)")
    value = value.astimezone(UTC)
    return value.replace(microsecond=999_999) if leap else value


def too_far_ahead(text: object, now: datetime | None = None) -> bool:
    """The instant is more than ``MAX_FUTURE_SKEW`` after ``now`` (default: this clock); unreadable: False."""
    at = try_instant(text)
    return at is not None and at > (now or datetime.now(UTC)) + MAX_FUTURE_SKEW


def try_instant(text: object) -> datetime | None:
    """``parse_instant`` for values read back from storage: None when absent or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return parse_instant(text)
    except InstantError:
        return None


def is_after(a: str | None, b: str | None) -> bool:
    """True when instant ``a`` is strictly later than instant ``b`` (unknown or unreadable: False)."""
    ta, tb = try_instant(a), try_instant(b)
    return ta is not None and tb is not None and ta > tb


def refresh_after(a_at: str | None, a_id: str | None, b_at: str | None, b_id: str | None) -> bool:
    """True when refresh ``a`` (instant, id) comes after refresh ``b``: the later instant, and between two
    refreshes of the same instant the greater refresh id. A refresh is never after itself; an unknown or
    unreadable instant orders nothing (False).

    Why the id: two refreshes made in the same second (an upstream retry, two jobs) must be ordered the same
    way by every replica, whichever arrives first, or a late duplicate would undo the other on one replica and
    be stale on the next.

    An instant more than ``MAX_FUTURE_SKEW`` ahead of this clock orders nothing either: such a refresh is
    refused on arrival, and one recorded before that check existed must not hold every genuine refresh off.
    """
    ta, tb = try_instant(a_at), try_instant(b_at)
    if ta is None or tb is None or too_far_ahead(a_at) or too_far_ahead(b_at):
        return False
    return ta > tb or (ta == tb and (a_id or "") > (b_id or ""))
