"""One page of profiles from one part of a snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Page:
    """Up to ``page_size`` parsed profiles of one part.

    Why line numbers travel with each row: failure reports and invalid-profile counts must point an
    operator at the exact line of the exact part, and a page never spans two parts, so
    ``(source, line)`` is enough to find any row again.

    Why no "lines that could not be parsed": a part is read whole or not at all. A line the parser
    cannot read (an open quote, invalid UTF-8, a JSON Lines line that is not an object) fails the part
    with SnapshotError; only rows that parsed but hold a bad value are the consumer's to count invalid.
    """

    source: str
    """The part's URI: ``file:///abs/path`` or ``s3://bucket/key``."""
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """(1-based physical line number in the part, profile object)."""
    columns: tuple[str, ...] | None = None
    """The header's column names (CSV); None where rows name their own fields (JSON Lines)."""
