"""One page of profiles from one part of a snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Page:
    """Up to ``page_size`` parsed profiles of one part, plus the lines that could not be parsed.

    Why line numbers travel with each row: failure reports and invalid-profile counts must point an
    operator at the exact line of the exact part, and a page never spans two parts, so
    ``(source, line)`` is enough to find any row again.
    """

    source: str
    """The part's URI: ``file:///abs/path`` or ``s3://bucket/key``."""
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """(1-based physical line number in the part, profile object)."""
    errors: list[tuple[int, str]] = field(default_factory=list)
    """(line number, reason) for lines that are not a profile; they do not count toward page_size."""
