"""An empty snapshot, then one missing 30% of the segment: the removal guard refuses both, nothing is sent.

After a first sync of the whole segment, an upstream mistake publishes a snapshot with no profile at all,
then a truncated one. Without the guard each would unsubscribe most of the list (for good: bulk import never
re-subscribes). Each must end in one ``export.failed`` with the code ``removal_guard``, before any request
that changes ActiveCampaign, and the list must still be the first sync's.
"""

from __future__ import annotations

from chaos.stage import Stage
from worker.contacts.samples import make_segment


def _writes(stage: Stage, since: int) -> list[dict]:
    """Requests that may change ActiveCampaign (anything but a read) since request number ``since``."""
    return [r for r in stage.sim.client.requests()[since:] if r["method"] != "GET"]


def empty_snapshot(stage: Stage) -> None:
    n = stage.size.profiles
    seg = make_segment(range(n), invalid_rate=0.005, seed=19)
    stage.expected[3] = seg.expected
    stage.start_worker(stage.config())
    stage.wait_run(stage.publish_refresh(stage.put_snapshot("full", seg.profiles), "full-1"))
    for name, profiles in (("empty", []), ("truncated", seg.profiles[: int(len(seg.profiles) * 0.7)])):
        before = len(stage.sim.client.requests())
        event = stage.wait_run(stage.publish_refresh(stage.put_snapshot(name, profiles), f"{name}-1",
                                                     outcome="removal_guard"))
        writes = _writes(stage, before)
        stage.check(not writes, f"{name} snapshot: {len(writes)} writing request(s) reached ActiveCampaign, "
                    f"e.g. {[(r['method'], r['path']) for r in writes[:3]]}")
        message = event.get("error", {}).get("message", "")
        stage.check("allow-mass-removal" in message, f"{name} snapshot: the refusal does not say how to "
                    f"override it: {message[:200]!r}")
        stage.note(f"{name} snapshot: {event['type']} {event.get('error', {}).get('code')}, "
                   f"{len(writes)} writes")
