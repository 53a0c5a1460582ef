"""A self-overwriting progress line on stderr for ``sync``, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import Any


class TtyProgress:
    """Called with the engine's progress counters; redraws at most five times a second."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, p: Any) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        elapsed = max(now - p.started, 1e-6)
        sys.stderr.write(
            f"\r  read {p.profiles_read:,} profiles | batches planned {p.batches_planned:,} "
            f"sent {p.batches_sent:,} confirmed {p.batches_confirmed:,} | "
            f"{p.contacts_sent / elapsed * 60:,.0f} contacts/min   "
        )
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
