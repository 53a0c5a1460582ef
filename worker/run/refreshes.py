"""Which of two refreshes is the newer: the one order every replica and every step of a run agrees on.

Why a module of its own: the commit, the fold of open plans (settle), the plan registry (plans) and the
engine's stale check all compare refreshes, and the plan registry sits below the commit; kept in the
commit module, the comparison tied plans -> commit -> retention -> plans into an import circle.
"""

from __future__ import annotations

from worker.events.instants import refresh_after
from worker.syncstate.manifest import Refresh


def newest(a: Refresh | None, b: Refresh | None) -> Refresh | None:
    """The later of two refreshes, by instant and then by refresh id (``refresh_after``: the same order on
    every replica); one without an instant never displaces one with."""
    if a is None or (b is not None and b.occurred_at and (
            not a.occurred_at or not refresh_after(a.occurred_at, a.refresh_id, b.occurred_at, b.refresh_id))):
        return b if b is not None else a
    return a
