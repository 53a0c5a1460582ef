"""Deterministic pieces of the simulator, checked on synthetic clocks (no sleeping, no HTTP)."""

from __future__ import annotations

from datetime import UTC

import pytest

from worker.sim import stamps
from worker.sim.contact_search import ContactQuery, search
from worker.sim.emails import is_valid_email
from worker.sim.imports import Batch
from worker.sim.limits import RateLimits, SlidingWindow, retry_after_header, window_shape
from worker.sim.settings import SimSettings
from worker.sim.sortedids import SortedIds, page
from worker.sim.store import Store


@pytest.mark.parametrize("email", ["a@b.co", "first.last+tag@example.com", "x@sub.example.org",
                                   "o'brien@example.com", "UPPER@EXAMPLE.COM", "a@b.co.uk"])
def test_email_rule_accepts(email: str) -> None:
    assert is_valid_email(email)


@pytest.mark.parametrize("email", [
    "", "@example.com", "a@@example.com", "a@b@example.com", "noat.example.com", "a(b)@example.com",
    "a,b@example.com", "a:b@example.com", "a;b@example.com", "a<b>@example.com", 'a"b@example.com',
    "a[b]@example.com", "a\\b@example.com", "invalid.email@invalidDomain", "a@example.c", "a@example.1com",
])
def test_email_rule_rejects(email: str) -> None:
    assert not is_valid_email(email)


def test_window_shape_matches_ac_at_integer_rates_and_keeps_fractional_rates_exact() -> None:
    assert window_shape(5.0, 1.0) == (5, 1.0)
    assert window_shape(50.0, 1.0) == (50, 1.0)
    assert window_shape(100 * 0.05, 60.0) == (5, pytest.approx(60.0))
    limit, window = window_shape(5 * 0.05, 1.0)
    assert (limit, window) == (1, pytest.approx(4.0))
    limit, window = window_shape(2.5, 1.0)
    assert (limit, window) == (2, pytest.approx(0.8))


def test_sliding_window_is_exact_and_refusals_do_not_count() -> None:
    window = SlidingWindow(5, 1.0)
    for i in range(5):
        assert window.try_acquire(10.0 + i * 0.1)
    assert window.remaining(10.4) == 0
    # Refused many times: none of these count.
    for _ in range(20):
        assert not window.try_acquire(10.5)
    assert window.retry_after(10.5) == pytest.approx(0.5)
    # The stamp at 10.0 stops counting at exactly 11.0.
    assert not window.try_acquire(10.999)
    assert window.try_acquire(11.0)
    assert not window.try_acquire(11.05)
    assert window.try_acquire(11.1)


def test_paced_client_at_exactly_the_budget_is_never_refused() -> None:
    # Exact binary fractions, so the test is about the window and not about float rounding.
    window = SlidingWindow(4, 1.0)
    assert all(window.try_acquire(i * 0.25) for i in range(200))
    assert not window.try_acquire(199 * 0.25 + 0.125)


def test_retry_after_header_is_whole_seconds_at_least_one() -> None:
    assert retry_after_header(0.0) == "1"
    assert retry_after_header(0.2) == "1"
    assert retry_after_header(1.0) == "1"
    assert retry_after_header(1.01) == "2"
    assert retry_after_header(59.5) == "60"


def test_storm_schedule() -> None:
    settings = SimSettings(storm_every=10.0, storm_duration=2.0)
    limits = RateLimits(settings, now=100.0)
    assert limits.storm_remaining(settings, 105.0) == 0  # first period is calm
    assert limits.storm_remaining(settings, 110.5) == pytest.approx(1.5)
    assert limits.storm_remaining(settings, 112.0) == 0
    assert limits.storm_remaining(settings, 120.0) == pytest.approx(2.0)
    calm = SimSettings()
    assert limits.storm_remaining(calm, 110.5) == 0


def test_bulk_windows_are_chosen_by_contact_count() -> None:
    limits = RateLimits(SimSettings(), now=0.0)
    assert limits.bulk_window(1) is limits.single_bulk
    assert limits.bulk_window(2) is limits.bulk
    assert (limits.bulk.limit, limits.single_bulk.limit, limits.api.limit) == (100, 20, 5)
    scaled = RateLimits(SimSettings(rate_scale=10), now=0.0)
    assert (scaled.bulk.limit, scaled.single_bulk.limit, scaled.api.limit) == (1000, 200, 50)


def test_batch_status_timeline() -> None:
    batch = Batch(id="b", accepted_at=0.0, due=1.0, for_date="2024-01-01", count=1, contacts=[])
    assert batch.status(0.0) is False
    assert batch.status(0.24) is False
    assert batch.status(0.25) == "waiting"
    assert batch.status(0.45) == "claimed"
    assert batch.status(0.5) == "active"
    assert batch.status(5.0) == "active"  # "completed" only once applied
    batch.final = "completed"
    assert batch.status(0.0) == "completed"
    slow = Batch(id="s", accepted_at=0.0, due=10.0, for_date="2024-01-01", count=1, contacts=[])
    assert slow.status(0.29) is False
    assert slow.status(0.3) == "waiting"


def test_sorted_ids_and_paging() -> None:
    ids = SortedIds()
    for value in (5, 1, 3, 9, 7, 3):
        ids.add(value)
    assert list(ids) == [1, 3, 5, 7, 9]
    ids.discard(5)
    ids.discard(42)
    assert list(ids) == [1, 3, 7, 9] and 7 in ids and 5 not in ids
    assert page(ids.ids, id_greater=None, offset=1, limit=2) == ([3, 7], 4)
    assert page(ids.ids, id_greater=3, offset=0, limit=10) == ([7, 9], 2)
    assert page(range(1, 11), id_greater=None, offset=8, limit=5) == ([9, 10], 10)
    assert page(range(1, 11), id_greater=None, offset=0, limit=3, descending=True) == ([10, 9, 8], 10)
    assert page(range(1, 11), id_greater=8, offset=0, limit=5, descending=True) == ([10, 9], 2)
    assert page(range(1, 11), id_greater=None, offset=20, limit=5) == ([], 10)


def test_settings_validation() -> None:
    with pytest.raises(ValueError):
        SimSettings(error_rate=1.5)
    with pytest.raises(ValueError):
        SimSettings(requests_per_second=0)
    with pytest.raises(ValueError):
        SimSettings(fields=[{"id": 1, "title": "A", "type": "nonsense", "perstag": "A"}])
    with pytest.raises(ValueError, match="unknown setting"):
        SimSettings().with_changes({"errror_rate": 0.1})
    changed = SimSettings().with_changes({"lists": {"9": "Nine"}, "latency": 0.5})
    assert changed.lists == {9: "Nine"} and changed.latency == 0.5


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-05-01", "2024-05-01T00:00:00+00:00"),
    ("2024-05-01 10:00:00", "2024-05-01T10:00:00+00:00"),
    ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00+00:00"),
    ("2024-05-01T10:00:00-05:00", "2024-05-01T15:00:00+00:00"),
    ("2024-05-01T10:00:00.250000+02:00", "2024-05-01T08:00:00.250000+00:00"),
    ("2024-05-01T10:00:00 02:00", "2024-05-01T08:00:00+00:00"),  # an unencoded '+' read as a space
])
def test_parse_instant_reads_the_forms_readers_send(text: str, expected: str) -> None:
    assert stamps.parse_instant(text).astimezone(UTC).isoformat() == expected


def test_parse_instant_names_the_accepted_forms() -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        stamps.parse_instant("yesterday")


def test_timestamps_are_spelled_as_ac_does() -> None:
    when = stamps.parse_instant("2024-05-01T10:00:00Z")
    assert (stamps.iso(when), stamps.plain(when)) == ("2024-05-01T10:00:00+00:00", "2024-05-01 10:00:00")
    assert stamps.iso(None) is None and stamps.plain(None) is None
    assert stamps.current("2024-05-01T10:00:00.9Z") == when  # whole seconds, as AC stamps


def test_new_knobs_are_validated() -> None:
    with pytest.raises(ValueError, match="frozen_time"):
        SimSettings(frozen_time="soon")
    with pytest.raises(ValueError, match="bad_key_html"):
        SimSettings().with_changes({"bad_key_html": "yes"})
    assert SimSettings().with_changes({"bad_key_html": True, "frozen_time": "2024-05-01"}).bad_key_html


def test_contact_search_breaks_ties_by_id_in_either_direction() -> None:
    store = Store(SimSettings(frozen_time="2024-05-01T00:00:00Z"))
    for name in ("b", "a", "b", "a"):
        store.update_contact(store.create_contact(f"{name}{store.next_contact_id}@example.com"),
                             {"first_name": name.upper()}, [])
    by_name = ContactQuery(orders=[("first_name", True)])
    found, total = search(store, by_name)
    assert total == 4 and [c.id for c in found] == [1, 3, 2, 4]  # B, B, A, A; ties by ascending id
    by_name_then_id = ContactQuery(orders=[("first_name", False), ("id", True)])
    assert [c.id for c in search(store, by_name_then_id)[0]] == [4, 2, 3, 1]
    assert [c.id for c in search(store, ContactQuery(id_greater=1, id_less=4))[0]] == [2, 3]
