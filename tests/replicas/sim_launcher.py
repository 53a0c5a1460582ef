"""``segment-export simulate`` with the cyclic garbage collector kept off the account's contacts.

Why: a simulator that holds a few hundred thousand contacts pauses for one to two seconds in each full
collection of CPython's cyclic GC. Requests that arrive meanwhile are stamped when it wakes, as one
burst; its per-second window then refuses requests that reached it within the budget, and its request log
shows a silence followed by more bulk imports in a second than any schedule granted (measured: longest
silence 1.3-2.2 s, 2% refused; with this launcher 0.2 s, none). That measures the simulator, not the
replicas. So what is alive is frozen out of the collector's reach every second (and its thresholds are
raised, as the planner's are: ``worker.contacts.plan.tune_gc``); the few cycles a request leaves are then never
collected, which a simulator that lives for a test's minutes can afford.

Usage: python tests/replicas/sim_launcher.py [simulate options]
"""

from __future__ import annotations

import gc
import sys
import threading
import time


def freeze_forever(interval: float = 1.0) -> None:
    while True:
        time.sleep(interval)
        gc.freeze()


if __name__ == "__main__":
    gc.set_threshold(50_000, 20, 100)
    threading.Thread(target=freeze_forever, name="gc-freeze", daemon=True).start()
    from worker.sim.cli import main

    sys.exit(main(sys.argv[1:]))
