"""How many examples the property-based (fuzz) tests draw: a short run in ``make test``, a long one in
``make chaos``.

Why one knob: the same properties guard the location function and the snapshot readers in both runs; only
the number of examples differs. ``SEGMENT_EXPORT_FUZZ_SCALE`` multiplies each test's short count (``make
chaos`` sets it, see ``chaos/fuzz.py``); hypothesis' own statistics (``--hypothesis-show-statistics``)
report the examples that were really run.
"""

from __future__ import annotations

import os

from hypothesis import settings

SCALE = max(1, int(os.environ.get("SEGMENT_EXPORT_FUZZ_SCALE", "1")))


def fuzz(short: int) -> settings:
    """Settings drawing ``short`` examples (times SCALE); no deadline (timing is not what is tested)."""
    return settings(max_examples=short * SCALE, deadline=None)
