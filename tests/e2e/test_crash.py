"""Must-show 2: kill -9 of the worker at three points of a run, then a restart.

The run finishes from its checkpoint, the list is exact, the request message is not lost (nothing left in
the queue, nothing dead-lettered, the completion was published), exactly one export.completed is published
for the run id, and ActiveCampaign received every contact once plus at most the batches in flight at the
kill a second time.
"""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.e2e.conftest import (
    API_KEY,
    BATCH,
    PAGE,
    Sim,
    records,
    refreshed,
    run_dir,
    run_id_for,
    wait_for,
    write_config,
)
from worker.contacts.samples import make_segment, write_jsonl
from worker.run.runbook import decode_part_header


def simulator_caught_up(sim: Sim) -> None:
    """Return once every API request that reached the simulator before this call is in its request log.

    The simulator sleeps ``latency`` before it logs a request (its documented order), and equal sleeps
    end in the order they began; so when a request sent now has been answered, every request that
    arrived before it has been logged too: in flight (status 0) or answered. Any answer will do.
    """
    probe = urllib.request.Request(f"{sim.url}/api/3/lists", headers={"Api-Token": API_KEY})
    try:
        with urllib.request.urlopen(probe, timeout=120) as resp:
            resp.read()
    except urllib.error.HTTPError:  # a 429 is logged after the same sleep: just as good
        pass


def planned_batches(tmp_path, export: str, run_id: str) -> int:
    return sum(len(decode_part_header(p.read_bytes())["batches"])
               for p in run_dir(tmp_path, export, run_id).glob("**/part-*"))


@pytest.mark.slow  # about 40 s each: a 20,000-profile run killed and finished
@pytest.mark.parametrize("point", ["reading", "sending", "polling"])
def test_kill_9_then_restart_finishes_exactly_once(tmp_path, sim, rabbit, workers, point):
    n = 20_000 if point == "reading" else 10_000
    seg = make_segment(range(n), invalid_rate=0.005, duplicate_rate=0.005, seed=7)
    snap = write_jsonl(tmp_path / "snap.jsonl", seg.profiles)
    config = write_config(tmp_path, sim, rabbit)
    worker = workers(config)
    slow = {"reading": {"latency": 4.0}, "sending": {"processing_delay": 3.0},
            "polling": {"processing_delay": 8.0}}[point]
    sim.client.configure(**slow)

    event = refreshed(snap, refresh_id="crash-1")
    run_id = run_id_for("vip", "crash-1")
    rabbit.publish(event)
    total = -(-len(seg.expected) // 250)  # at least this many batches (batches do not span pages)

    def kill_point() -> bool:
        parts, accepted, final = records(tmp_path, "vip", run_id)
        if point == "reading":
            return parts >= 1 and accepted == 0
        if point == "sending":
            return 3 <= accepted < total and final < accepted
        return accepted >= planned_batches(tmp_path, "vip", run_id) >= total and final < accepted

    wait_for(kill_point, 90, f"the run to reach the {point} point", interval=0.02, check=worker.assert_alive)
    worker.kill()
    _parts, accepted_at_kill, final_at_kill = records(tmp_path, "vip", run_id)
    assert not (tmp_path / "state" / "exports" / "vip" / "synced").exists(), "committed before the kill?"
    if point == "reading":
        assert accepted_at_kill == 0
    elif point == "sending":
        assert 0 < accepted_at_kill < total
    else:
        assert final_at_kill < accepted_at_kill
    # requests that were already on their way finish on the simulator's side (or not): count what AC accepted.
    # The simulator logs a request only after its latency, so first let any that were sleeping surface.
    simulator_caught_up(sim)
    wait_for(lambda: not sim.in_flight(), 30, "requests in flight at the kill to end")
    accepted_by_ac_at_kill = len(sim.bulk_posts())
    in_flight_at_kill = accepted_by_ac_at_kill - accepted_at_kill
    assert 0 <= in_flight_at_kill <= 16  # the importer's concurrent POSTs
    assert rabbit.completions() == []

    sim.client.configure(latency=0.0, processing_delay=0.2)
    again = workers(config)
    done = rabbit.wait_completions(1, 120, check=again.assert_alive)
    rabbit.wait_idle(60, check=again.assert_alive)
    done = rabbit.completions()
    assert len(done) == 1, done
    assert [e for e in rabbit.events if e["run_id"] == run_id] == done
    e = done[0]
    assert e["run_id"] == run_id and e["status"] == "succeeded"
    assert e["counts"]["added"] == len(seg.expected) and e["counts"]["failed"] == 0
    assert e["counts"]["profiles"] == len(seg.profiles)
    assert e["counts"]["invalid"] == seg.invalid and e["counts"]["duplicates"] == seg.duplicates
    sim.assert_list_exact(3, seg.expected)
    assert rabbit.read_dead() == []  # the request was neither lost nor dead-lettered
    # The run's records are gone once it committed, so its batches are bounded from the segment: every
    # valid contact once, plus at most the batches in flight at the kill a second time.
    sent = sim.bulk_posts()
    contacts_sent = sum(r["contacts"] for r in sent)
    assert len(seg.expected) <= contacts_sent <= len(seg.expected) + BATCH * in_flight_at_kill, (
        contacts_sent, len(seg.expected), in_flight_at_kill)
    pages = -(-len(seg.profiles) // PAGE)  # batches never span pages: at most one partial batch a page
    assert total <= len(sent) <= total + pages - 1 + in_flight_at_kill, (len(sent), total, in_flight_at_kill)
    assert again.alive()
