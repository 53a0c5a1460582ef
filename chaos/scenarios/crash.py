"""kill -9 of the worker while it plans, while it sends and while it confirms; a new worker finishes the run.

Each point is reached by slowing the simulator so that the run lingers there (every answer 4 s late while
planning; a slow worker budget while sending; batches that take long to process while confirming), and is
recognised from the run's own records in the state store: plan parts written but nothing accepted; some
batches accepted, not all; every planned batch accepted, not all final. After the kill the simulator is
fast again and a new worker (the account's full budget) takes the request RabbitMQ redelivers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chaos.stage import BATCH, Stage
from tests.e2e.conftest import API_KEY
from worker.contacts.samples import make_segment

PAGE = 5000  # profiles per plan part


@dataclass(frozen=True)
class Point:
    """Where the run is, from its records: ``batches`` is a lower bound of the plan's batches."""

    stage: Stage
    run_id: str
    parts: int
    accepted: int
    final: int
    batches: int
    pages: int


def _kill_then_resume(stage: Stage, point: str, slow: dict[str, float], reached: Callable[[Point], bool], *,
                      rate_scale: float | None = None) -> None:
    seg = make_segment(range(stage.size.profiles), invalid_rate=0.005, duplicate_rate=0.005, seed=7)
    stage.expected[3] = seg.expected
    uri = stage.put_snapshot("segment", seg.profiles)
    batches = -(-len(seg.expected) // BATCH)  # at least this many (batches do not span pages)
    pages = -(-len(seg.profiles) // PAGE)
    stage.sim.client.configure(**slow)
    first = stage.start_worker(stage.config(rate_scale=rate_scale, name="slow.toml"))
    run_id = stage.publish_refresh(uri, "chaos-1")
    stage.wait(lambda: reached(Point(stage, run_id, *stage.records("vip", run_id), batches, pages)),
               stage.size.timeout, f"the run to be {point}", interval=0.05)
    stage.kill(first)
    parts, accepted, final = stage.records("vip", run_id)
    stage.check(not stage.synced_exists("vip"), "the synced state was committed before the kill")
    stage.check(not stage.outcomes(run_id), "a completion event was published before the kill")
    # bulk imports ActiveCampaign accepted without the run recording them: the most a restart may re-send
    _caught_up(stage)
    stage.wait(lambda: not stage.sim.in_flight(), 60, "requests in flight at the kill to end")
    in_flight = len(stage.sim.bulk_posts()) - accepted
    stage.note(f"killed while {point}: {parts} plan parts, {accepted} batches accepted ({in_flight} more in "
               f"flight), {final} final")

    stage.sim.client.configure(latency=0.0, processing_delay=0.2)
    stage.start_worker(stage.config(name="fast.toml"))
    stage.wait_run(run_id)
    # a first sync sends every expected contact once: anything beyond that was sent again
    resent = stage.resent()
    stage.check(0 <= resent <= in_flight * BATCH, f"{resent} contacts sent twice; at most the {in_flight} "
                "bulk imports in flight at the kill may be re-sent")
    stage.note(f"{resent} contacts re-sent")


def _caught_up(stage: Stage) -> None:
    """Return once every API request that reached the simulator before this call is in its request log.

    The simulator sleeps ``latency`` before it logs a request, and equal sleeps end in the order they began:
    when a request sent now has been answered (any answer), every earlier one has been logged.
    """
    import urllib.error
    import urllib.request

    probe = urllib.request.Request(f"{stage.sim.url}/api/3/lists", headers={"Api-Token": API_KEY})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(probe, timeout=120) as resp:
            resp.read()
    except urllib.error.HTTPError:  # a 429 is logged after the same sleep: just as good
        pass


def kill_while_planning(stage: Stage) -> None:
    # every ActiveCampaign answer takes 4 s: the first plan part is written long before a batch is accepted
    _kill_then_resume(stage, "planning", {"latency": 4.0}, lambda p: p.parts >= 1 and p.accepted == 0)


def kill_while_sending(stage: Stage) -> None:
    # the worker's own budget spreads the bulk imports over ~10 s; each batch takes 3 s to process
    batches = -(-stage.size.profiles // BATCH)
    _kill_then_resume(stage, "sending", {"processing_delay": 3.0},
                      lambda p: max(3, p.batches // 4) <= p.accepted < p.batches and p.final < p.accepted,
                      rate_scale=max(0.2, batches * 6 / 100))


def kill_while_confirming(stage: Stage) -> None:
    # batches take long to process: every one is accepted well before the first is final
    batches = -(-stage.size.profiles // BATCH)
    delay = 10.0 + 2 * batches / (100 * stage.size.rate_scale / 60)
    planned: dict[str, int] = {}

    def reached(p: Point) -> bool:
        if p.parts < p.pages or p.accepted < p.batches or p.final >= p.accepted:
            return False
        if p.run_id not in planned:  # the plan is complete: count its batches once
            planned[p.run_id] = p.stage.planned_batches("vip", p.run_id)
        return p.accepted >= planned[p.run_id]

    _kill_then_resume(stage, "confirming", {"processing_delay": delay}, reached)
