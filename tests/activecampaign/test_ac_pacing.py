"""SlotSchedule arithmetic on explicit times: no sleeping, no wall clock."""

from __future__ import annotations

import itertools
import random

import pytest

from worker.activecampaign.pacing import SlotSchedule

from .windows import max_in_window


def drive(
    schedule: SlotSchedule, *, bulks: int, others: int, lateness: float = 0.0, seed: int = 1
) -> tuple[list[float], list[float], list[float]]:
    """Both lanes permanently backlogged, served the way AccountLimiter serves them.

    Returns (bulk send times, other send times, how much each bulk was pushed back by "other" requests).
    Send times include a random lateness (the event loop waking up late), which is what AC would see.
    """
    rng = random.Random(seed)
    now = 0.0
    bulk_sent: list[float] = []
    other_sent: list[float] = []
    pushed: list[float] = []
    while len(bulk_sent) < bulks or len(other_sent) < others:
        bulk_waiting = len(bulk_sent) < bulks
        if bulk_waiting:
            lane_only = max(schedule._bulk_next, schedule.blocked_until)
            at = schedule.grant("bulk", now)
            if at is not None:
                if lane_only > float("-inf"):
                    pushed.append(max(0.0, at - lane_only))
                bulk_sent.append(now)
                continue
        if len(other_sent) < others and schedule.grant("other", now, bulk_waiting=bulk_waiting) is not None:
            other_sent.append(now)
            continue
        candidates = []
        if bulk_waiting:
            candidates.append(schedule.earliest("bulk", now))
        if len(other_sent) < others:
            candidates.append(schedule.earliest("other", now, bulk_waiting=bulk_waiting))
        now = min(candidates) + rng.uniform(0.0, lateness)
    return bulk_sent, other_sent, pushed


def test_spacings_follow_the_budget_and_safety() -> None:
    s = SlotSchedule(5.0, 100.0, safety=0.985)
    assert s.any_spacing == pytest.approx(1 / (5 * 0.985))
    assert s.bulk_spacing == pytest.approx(60 / (100 * 0.985))
    assert s.other_spacing == pytest.approx(1 / ((5 - 100 / 60) * 0.985))


def test_bulk_alone_is_evenly_paced_within_the_minute_window() -> None:
    s = SlotSchedule(5.0, 100.0, safety=0.985)
    bulk, _, _ = drive(s, bulks=400, others=0)
    gaps = [b - a for a, b in itertools.pairwise(bulk)]
    assert min(gaps) == pytest.approx(s.bulk_spacing)
    assert max(gaps) == pytest.approx(s.bulk_spacing)
    assert max_in_window(bulk, 60.0) <= 100
    assert max_in_window(bulk, 1.0) <= 5


@pytest.mark.parametrize(("rps", "bpm"), [(5.0, 100.0), (100.0, 2000.0), (50.0, 1000.0)])
def test_saturated_lanes_stay_inside_both_windows_and_bulk_is_never_pushed(rps: float, bpm: float) -> None:
    s = SlotSchedule(rps, bpm, safety=0.985)
    bulk, other, pushed = drive(s, bulks=300, others=600)
    assert max(pushed) == pytest.approx(0.0, abs=1e-9)  # polls never delayed a waiting POST
    everything = bulk + other
    assert max_in_window(everything, 1.0) <= rps
    assert max_in_window(bulk, 60.0) <= bpm
    # Bulk runs at its full paced rate; others get the rest (two slots between POSTs at AC's figures).
    duration = bulk[-1] - bulk[0]
    assert (len(bulk) - 1) / duration == pytest.approx(bpm / 60 * 0.985, rel=1e-6)
    other_in_span = [t for t in other if bulk[0] <= t < bulk[-1]]
    assert len(other_in_span) / duration == pytest.approx((rps - bpm / 60) * 0.985, rel=0.02)


def test_loop_lateness_does_not_leak_throughput_or_break_the_windows() -> None:
    s = SlotSchedule(5.0, 100.0, safety=0.985)
    bulk, other, _ = drive(s, bulks=300, others=600, lateness=0.004, seed=7)
    assert max_in_window(bulk + other, 1.0) <= 5
    assert max_in_window(bulk, 60.0) <= 100
    duration = bulk[-1] - bulk[0]
    assert (len(bulk) - 1) / duration == pytest.approx(100 / 60 * 0.985, rel=0.01)
    other_in_span = [t for t in other if bulk[0] <= t < bulk[-1]]
    assert len(other_in_span) / duration == pytest.approx((5 - 100 / 60) * 0.985, rel=0.03)


def test_others_alone_are_capped_at_their_share_on_average() -> None:
    s = SlotSchedule(5.0, 100.0, safety=0.985)
    _, other, _ = drive(s, bulks=0, others=500)
    assert (len(other) - 1) / (other[-1] - other[0]) == pytest.approx((5 - 100 / 60) * 0.985, rel=0.01)
    assert max_in_window(other, 1.0) <= 5


def test_an_idle_lane_restarts_from_now_without_a_burst() -> None:
    s = SlotSchedule(5.0, 100.0, safety=0.985)
    assert s.grant("bulk", 100.0) == 100.0
    assert s.grant("bulk", 100.0) is None
    assert s.earliest("bulk", 100.0) == pytest.approx(100.0 + s.bulk_spacing)
    # Long idle: the next slot is "now", not a backlog of missed slots.
    assert s.grant("bulk", 500.0) == 500.0
    assert s.grant("bulk", 500.0 + s.bulk_spacing / 2) is None


def test_other_makes_room_for_a_waiting_bulk_post() -> None:
    s = SlotSchedule(5.0, 100.0, safety=0.985)
    s.take("bulk", 0.0)
    # A bulk POST is due at bulk_spacing; an "other" at 2*any_spacing still ends in time, a later one not.
    assert s.earliest("other", s.any_spacing, bulk_waiting=True) == pytest.approx(s.any_spacing)
    s.take("other", s.any_spacing)
    s.take("other", 2 * s.any_spacing)
    late = s.earliest("other", 2.2 * s.any_spacing, bulk_waiting=True)
    assert late == pytest.approx(s.bulk_spacing + s.any_spacing)
    # Without a waiting POST the same request may go as soon as its own lane allows.
    assert s.earliest("other", 3 * s.any_spacing, bulk_waiting=False) < late


def test_block_pauses_everyone_until_the_given_time() -> None:
    s = SlotSchedule(5.0, 100.0, safety=0.985)
    s.block(10.0)
    s.block(5.0)  # never shortens a pause
    assert s.earliest("bulk", 1.0) == 10.0
    assert s.earliest("other", 1.0) == 10.0
    assert s.grant("other", 9.99) is None
    assert s.grant("other", 10.0) == 10.0


def test_recorded_slot_keeps_the_grid_when_slightly_late_but_not_when_idle() -> None:
    s = SlotSchedule(5.0, 100.0, safety=0.985)
    s.take("bulk", 0.0)
    slightly_late = s.bulk_spacing + s.grace / 2
    assert s.grant("bulk", slightly_late) == pytest.approx(s.bulk_spacing)
    very_late = 10.0
    assert s.grant("bulk", very_late) == very_late


def test_misconfigured_bulk_budget_leaves_room_for_polls() -> None:
    s = SlotSchedule(1.0, 600.0, safety=1.0)  # 10 bulk/s on a 1 request/s account
    assert s.bulk_spacing == pytest.approx(1.5)
    assert s.other_spacing == pytest.approx(3.0)


@pytest.mark.parametrize("bad", [{"safety": 0.0}, {"safety": 1.5}])
def test_invalid_safety_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SlotSchedule(5.0, 100.0, **bad)
