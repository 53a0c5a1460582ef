"""Issue 8, must show 3: refreshes are ordered by instant, never by the text of ``occurred_at``.

Compared as strings, ``2026-11-30T09:00:00Z`` sorts before ``2026-11-30T10:00:00+02:00`` (08:00Z) and
``...:05:00Z`` after ``...:05:00.500Z``. Unit tests of ``worker.events.instants``; the run's markers on a real
file store; ``Engine`` runs against the simulator (an older-by-instant refresh arriving second is stale:
no event, nothing sent, list unchanged; a newer-by-instant one is synced; equal instants written
differently are not stale); and the real worker on RabbitMQ, including ``export.requested`` without a
snapshot, which must use the newest refresh by instant.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.conftest import ExportSpec, Sim, refreshed, run_id_for, wait_for, write_config
from tests.run.safety.support import direct_config, writes
from worker.contacts.samples import make_segment, write_jsonl
from worker.events.instants import InstantError, is_after, parse_instant, try_instant

# ------------------------------------------------------------------------------------------ units


@pytest.mark.parametrize(("text", "utc"), [
    ("2026-11-30T09:00:00Z", datetime(2026, 11, 30, 9, tzinfo=UTC)),
    ("2026-11-30T10:00:00+02:00", datetime(2026, 11, 30, 8, tzinfo=UTC)),
    ("2026-11-30T03:30:00-05:30", datetime(2026, 11, 30, 9, tzinfo=UTC)),
    ("2026-11-30T09:00:00-00:00", datetime(2026, 11, 30, 9, tzinfo=UTC)),
    ("2026-11-30t09:00:00z", datetime(2026, 11, 30, 9, tzinfo=UTC)),  # RFC 3339 allows lower case
    ("2026-11-30T09:05:00.5Z", datetime(2026, 11, 30, 9, 5, 0, 500000, tzinfo=UTC)),
    ("2026-11-30T09:05:00.500Z", datetime(2026, 11, 30, 9, 5, 0, 500000, tzinfo=UTC)),
    ("2026-11-30T09:05:00.123456Z", datetime(2026, 11, 30, 9, 5, 0, 123456, tzinfo=UTC)),
    ("2026-12-01T01:00:00+14:00", datetime(2026, 11, 30, 11, tzinfo=UTC)),  # the date changes too
])
def test_parse_instant_gives_the_utc_instant(text: str, utc: datetime) -> None:
    got = parse_instant(text)
    assert got == utc and got.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["", "yesterday", "2026-11-30", "2026-11-30T09:00:00", "2026-13-01T00:00:00Z",
                                  "2026-11-30T25:00:00Z", "2026-11-30T09:00:00+25:00"])
def test_parse_instant_refuses_what_is_not_an_instant(text: str) -> None:
    with pytest.raises(InstantError) as err:
        parse_instant(text)
    assert "RFC 3339" in str(err.value)
    assert try_instant(text) is None


def test_parse_instant_names_a_wrong_type() -> None:
    with pytest.raises(InstantError, match="string"):
        parse_instant(1764493200)  # type: ignore[arg-type]


def test_try_instant_is_none_for_what_storage_may_hold() -> None:
    assert try_instant(None) is None and try_instant("") is None and try_instant(3) is None
    assert try_instant("2026-11-30T10:00:00+02:00") == datetime(2026, 11, 30, 8, tzinfo=UTC)


@pytest.mark.parametrize(("a", "b", "after"), [
    ("2026-11-30T09:00:00Z", "2026-11-30T10:00:00+02:00", True),  # the text says the opposite
    ("2026-11-30T10:00:00+02:00", "2026-11-30T09:00:00Z", False),
    ("2026-11-30T09:05:00.500Z", "2026-11-30T09:05:00Z", True),  # the text says the opposite
    ("2026-11-30T09:05:00Z", "2026-11-30T09:05:00.500Z", False),
    ("2026-11-30T09:00:00-01:00", "2026-11-30T09:30:00Z", True),  # 10:00Z
    ("2026-11-30T09:00:00Z", "2026-11-30T11:00:00+02:00", False),  # equal instants: not after
    ("2026-11-30T11:00:00+02:00", "2026-11-30T09:00:00.000Z", False),
    ("2026-11-30T09:00:00Z", None, False),  # unknown: never after
    (None, "2026-11-30T09:00:00Z", False),
    ("garbage", "2026-11-30T09:00:00Z", False),
])
def test_is_after_compares_instants(a: str | None, b: str | None, after: bool) -> None:
    assert is_after(a, b) is after


def test_a_leap_second_is_an_instant() -> None:
    """RFC 3339 (and the event schema, which accepts it) allow second 60. An instant that cannot be read
    is never "after" anything, so a refresh stamped in a leap second would defeat stale detection: a
    later, older refresh would not be seen as older. It must parse, between :59 and the next minute."""
    leap = parse_instant("2016-12-31T23:59:60Z")
    assert datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC) <= leap <= datetime(2017, 1, 1, tzinfo=UTC)
    assert is_after("2016-12-31T23:59:60Z", "2016-12-31T23:59:58Z")


# ------------------------------------------------------------------------------------------ the run's markers


def test_markers_keep_the_newest_by_instant(tmp_path: Path) -> None:
    """last_refresh (stale detection) and last_snapshot (export.requested without one) on a real store."""
    from worker.run.runbook import Runbook
    from worker.state import open_store

    store = open_store(f"file://{tmp_path / 'state'}")
    book = Runbook(store, "vip", "-")
    book.record_refresh("r-09z", "2026-11-30T09:00:00Z", "file:///a.jsonl")
    book.record_refresh("r-08z", "2026-11-30T10:00:00+02:00", "file:///b.jsonl")  # older, later text
    assert book.is_stale("r-08z", "2026-11-30T10:00:00+02:00")
    assert book.is_stale("r-0830z", "2026-11-30T08:30:00Z")
    assert not book.is_stale("r-09z", "2026-11-30T09:00:00Z")  # the same refresh is never stale to itself
    assert not book.is_stale("r-same", "2026-11-30T11:00:00+02:00")  # an equal instant is not older
    assert not book.is_stale("r-0905z", "2026-11-30T09:05:00Z")

    book.remember_snapshot({"uri": "file:///a.jsonl", "format": "jsonl"}, "r-a", "2026-11-30T09:05:00.500Z")
    book.remember_snapshot({"uri": "file:///b.jsonl", "format": "jsonl"}, "r-b", "2026-11-30T09:05:00Z")
    assert book.last_snapshot()["refresh_id"] == "r-a"
    book.remember_snapshot({"uri": "file:///c.jsonl", "format": "jsonl"}, "r-c", "2026-11-30T10:05:00.600+01:00")
    assert book.last_snapshot()["refresh_id"] == "r-c"  # 09:05:00.600Z: newer by 100 ms


# ------------------------------------------------------------------------------------------ engine runs


def run(config: Path, snap: Path, refresh_id: str, occurred_at: str):
    from worker.run.engine import Engine
    from worker.run.runbook import run_id_for as rid
    from worker.run.types import RunSpec
    from worker.settings import load_config
    from worker.state import open_store

    cfg = load_config(str(config))
    engine = Engine(cfg, open_store(cfg.worker.state_url))
    spec = RunSpec(export=cfg.export("vip"), snapshot_uri=str(snap), refresh_id=refresh_id,
                   run_id=rid("vip", refresh_id), snapshot_format="jsonl", occurred_at=occurred_at)
    return asyncio.run(engine.run(spec))


CASES = [  # first synced, then second arrives: is the second stale?
    ("2026-11-30T09:00:00Z", "2026-11-30T10:00:00+02:00", True),  # 08:00Z: older, though "10" > "09"
    ("2026-11-30T10:00:00+02:00", "2026-11-30T09:00:00Z", False),  # newer, though "09" < "10"
    ("2026-11-30T09:05:00.500Z", "2026-11-30T09:05:00Z", True),  # "Z" sorts after "."
    ("2026-11-30T09:05:00Z", "2026-11-30T09:05:00.500Z", False),
    ("2026-11-30T09:00:00-01:00", "2026-11-30T09:30:00Z", True),  # the first is 10:00Z
    ("2026-11-30T11:00:00+02:00", "2026-11-30T09:00:00Z", False),  # the same instant: not older
    ("2026-11-30T09:00:00.000Z", "2026-11-30T09:00:00Z", False),  # the same instant
]


@pytest.mark.parametrize(("first", "second", "stale"), CASES)
def test_engine_orders_refreshes_by_instant(tmp_path: Path, sim: Sim, first: str, second: str, stale: bool) -> None:
    config = direct_config(tmp_path, sim)
    a, b = make_segment(range(50)), make_segment(range(5, 55), versions={20: 1})  # 10% leave: under the guard
    snap_a = write_jsonl(tmp_path / "snap" / "a.jsonl", a.profiles)
    snap_b = write_jsonl(tmp_path / "snap" / "b.jsonl", b.profiles)
    assert run(config, snap_a, "r-first", first).event["status"] == "succeeded"
    members, seen = sim.client.members(3), len(sim.client.requests())

    result = run(config, snap_b, "r-second", second)
    if stale:
        assert result.stale and result.event is None and result.exit_code == 0
        assert writes(sim, seen) == [] and sim.client.members(3) == members
        assert set(sim.subscribed(3)) == set(a.expected)
    else:
        assert not result.stale and result.event is not None and result.event["status"] == "succeeded"
        c = result.event["counts"]
        assert (c["added"], c["removed"], c["updated"]) == (5, 5, 1), c
        sim.assert_list_exact(3, b.expected)


def test_the_newest_by_instant_stays_the_mark_to_beat(tmp_path: Path, sim: Sim) -> None:
    """Synced at 08:00Z (written +02:00), then 09:00Z: the mark is now 09:00Z, so a refresh of 08:30Z
    (whose text sorts before both) and one of 09:30+01:00 (08:30Z, text after both) are stale."""
    config = direct_config(tmp_path, sim)
    a, b = make_segment(range(30)), make_segment(range(5, 35))
    snap_a = write_jsonl(tmp_path / "snap" / "a.jsonl", a.profiles)
    snap_b = write_jsonl(tmp_path / "snap" / "b.jsonl", b.profiles)
    assert not run(config, snap_a, "r-0800", "2026-11-30T10:00:00+02:00").stale
    assert not run(config, snap_b, "r-0900", "2026-11-30T09:00:00Z").stale
    seen = len(sim.client.requests())
    assert run(config, snap_a, "r-0830", "2026-11-30T08:30:00Z").stale
    assert run(config, snap_a, "r-0830b", "2026-11-30T09:30:00+01:00").stale
    assert writes(sim, seen) == []
    sim.assert_list_exact(3, b.expected)


# ------------------------------------------------------------------------------------------ the worker


def test_worker_orders_refreshes_by_instant(tmp_path: Path, sim: Sim, rabbit, workers) -> None:
    """Export ``east``: 09:00Z synced, then 10:00+02:00 (08:00Z) arrives: stale. Export ``west``: the
    same two the other way round: the second (09:00Z) is synced. Then an ``export.requested`` without a
    snapshot for ``east`` runs on the newest snapshot by instant (09:00Z's), not the last to arrive."""
    east, west = ExportSpec("east", 4, segment="seg-east"), ExportSpec("west", 5, segment="seg-west")
    worker = workers(write_config(tmp_path, sim, rabbit, exports=[east, west]))
    # different people on each list: the simulator's contacts are account-wide
    a, b = make_segment(range(100)), make_segment(range(10, 130), versions={30: 1})
    wa, wb = make_segment(range(1000, 1100)), make_segment(range(1010, 1130), versions={1030: 1})
    snaps = {name: write_jsonl(tmp_path / "snap" / f"{name}.jsonl", seg.profiles)
             for name, seg in (("a", a), ("b", b), ("wa", wa), ("wb", wb))}

    rabbit.publish(refreshed(snaps["a"], refresh_id="east-1", occurred_at="2026-11-30T09:00:00Z",
                             segment="seg-east"))
    rabbit.publish(refreshed(snaps["wa"], refresh_id="west-1", occurred_at="2026-11-30T10:00:00+02:00",
                             segment="seg-west"))
    rabbit.wait_completions(2, 90, check=worker.assert_alive)
    east_members = sim.client.members(4)

    rabbit.publish(refreshed(snaps["b"], refresh_id="east-2", occurred_at="2026-11-30T10:00:00+02:00",
                             segment="seg-east"))
    rabbit.publish(refreshed(snaps["wb"], refresh_id="west-2", occurred_at="2026-11-30T09:00:00Z",
                             segment="seg-west"))
    done = rabbit.wait_completions(1, 90, check=worker.assert_alive, run_id=run_id_for("west", "west-2"))
    rabbit.wait_idle(60, check=worker.assert_alive)
    assert (done[0]["counts"]["added"], done[0]["counts"]["removed"], done[0]["counts"]["updated"]) == (30, 10, 1)
    sim.assert_list_exact(5, wb.expected)
    assert rabbit.completions(run_id=run_id_for("east", "east-2")) == []  # stale: no completion event
    assert worker.text().count("stale refresh skipped") == 1  # reported as stale, once
    assert sim.client.members(4) == east_members
    sim.assert_list_exact(4, a.expected)

    rabbit.publish({"type": "export.requested", "version": 1, "id": str(uuid.uuid4()),
                    "occurred_at": "2026-11-30T12:00:00Z", "export": "east"})
    got = wait_for(lambda: [e for e in rabbit.completions(export="east") if e["refresh_id"] != "east-1"
                            or e["run_id"] != run_id_for("east", "east-1")], 90,
                   "the requested run's export.completed", check=worker.assert_alive)
    assert len(got) == 1 and got[0]["refresh_id"] == "east-1", got  # the newest snapshot by instant: a
    assert got[0]["counts"]["unchanged"] == len(a.expected) and got[0]["counts"]["added"] == 0
    sim.assert_list_exact(4, a.expected)
    assert rabbit.read_dead() == [] and worker.alive()
