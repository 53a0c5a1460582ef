"""Issue 8, must show 2: people who leave the segment and come back.

1,000 synced; 100 leave and the export unsubscribes them (10 of them had unsubscribed themselves through
a campaign email's link just before); 50 of the others and those 10 come back. The 50 are subscribed
again through ``POST /contactLists`` (sourceid 4) and counted ``added``; the 10 stay unsubscribed and are
counted ``skipped``; nobody else is touched (every other contact's list status, names, fields and tags,
and every other list record, are as before). ``readmit = false`` keeps the 50 out. A contact whose
unsubscription another API client made, and that this export never unsubscribed, is never re-subscribed.

Real parts only: ``segment-export sync`` in this process against the simulator over HTTP; the
simulator's ``unsubscribe`` is a person's own action (or, with ``how="api"``, another API client's).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.conftest import Sim
from tests.run.safety.support import bulk_contacts, cli, contact_list_posts, direct_config, writes
from worker.contacts.samples import email_of, make_segment, person, write_jsonl

LIST = 3


def sync(capsys: pytest.CaptureFixture[str], config: Path, snap: Path) -> dict:
    rc, event, err = cli(capsys, "sync", "--config", config, "--export", "vip", "--snapshot", snap)
    assert event, f"sync printed no event (exit {rc}): {err[-2000:]}"
    assert rc == {"succeeded": 0, "partial": 3}.get(event["status"], 1), (rc, event)
    return event


def snapshot(tmp_path: Path, name: str, ids: list[int]) -> Path:
    return write_jsonl(tmp_path / "snap" / f"{name}.jsonl", make_segment(ids).profiles)


def emails(ids: range | list[int]) -> set[str]:
    return {email_of(person(i)) for i in ids}


def records(sim: Sim, addresses: set[str]) -> dict[str, dict | None]:
    return {e: sim.client.contact_list(e, LIST) for e in sorted(addresses)}


# who is who: 0..899 stay throughout; 900..999 leave; of those 900..949 come back (readmitted),
# 950..989 stay out, 990..999 unsubscribed themselves just before they left and come back too.
STAY = range(900)
BACK = range(900, 950)
AWAY = range(950, 990)
OWN = range(990, 1000)


def churn(tmp_path: Path, sim: Sim, capsys: pytest.CaptureFixture[str], config: Path) -> Path:
    """1,000 synced, the 10 unsubscribe themselves, 100 leave; returns the snapshot where 60 come back."""
    first = sync(capsys, config, snapshot(tmp_path, "all", list(range(1000))))
    assert first["counts"]["added"] == 1000 and len(sim.subscribed(LIST)) == 1000
    for email in emails(OWN):
        sim.client.unsubscribe(email, LIST)  # the person clicked "unsubscribe" in a campaign email
    left = sync(capsys, config, snapshot(tmp_path, "left", list(STAY)))
    assert left["status"] == "succeeded"
    assert left["counts"]["removed"] + left["counts"]["skipped"] == 100
    members = sim.client.members(LIST)
    assert {e for e, m in members.items() if m["status"] == "unsubscribed"} == emails(range(900, 1000))
    for email in emails(OWN):
        assert sim.client.contact_list(email, LIST)["campaign"] == "1"  # still the person's own
    back = make_segment([*STAY, *BACK, *OWN], versions=dict.fromkeys(BACK, 1))  # they come back renamed
    return write_jsonl(tmp_path / "snap" / "back.jsonl", back.profiles)


def test_leavers_who_come_back_are_readmitted_and_self_unsubscribed_stay_out(
        tmp_path: Path, sim: Sim, capsys: pytest.CaptureFixture[str]) -> None:
    config = direct_config(tmp_path, sim)
    back = churn(tmp_path, sim, capsys, config)
    before = sim.client.members(LIST)
    others = set(before) - emails(BACK)
    records_before = records(sim, emails(AWAY) | emails(OWN))
    stats_before = sim.client.stats()
    seen = len(sim.client.requests())

    event = sync(capsys, config, back)
    assert event["status"] == "succeeded"
    c = event["counts"]
    assert (c["profiles"], c["added"], c["skipped"], c["unchanged"]) == (960, 50, 10, 900), c
    assert (c["updated"], c["removed"], c["failed"], c["invalid"]) == (0, 0, 0, 0), c

    # the 50: subscribed again through contactLists with sourceid 4, their new data sent too
    posts = contact_list_posts(sim, seen)
    assert len(posts) == 50 and {p["status"] for p in posts} == {200}, posts[:3]
    stats = sim.client.stats()
    assert stats["resubscribed"] - stats_before["resubscribed"] == 50
    assert stats["resubscribed_own"] == stats_before["resubscribed_own"]  # never a person's own
    after = sim.client.members(LIST)
    for i in BACK:
        p, m = person(i, 1), after[email_of(person(i))]
        assert m["status"] == "subscribed", (i, m)
        assert (m["first_name"], m["last_name"], m["phone"]) == (p["FirstName"], p["LastName"], p["Phone"])
        assert sim.client.contact_list(email_of(p), LIST)["sourceid"] == "4"
    assert bulk_contacts(sim, seen) <= 50  # only re-entries were sent; the 10 never appear in a POST

    # the 10 stay out, and nobody else is touched: same status, names, fields, tags; same list records
    for email in emails(OWN):
        assert after[email]["status"] == "unsubscribed"
    assert {e: after[e] for e in others} == {e: before[e] for e in others}
    assert records(sim, emails(AWAY) | emails(OWN)) == records_before

    # the next identical refresh sends nothing and still keeps the 10 out
    seen = len(sim.client.requests())
    again = sync(capsys, config, back)
    assert (again["counts"]["added"], again["counts"]["skipped"], again["counts"]["unchanged"]) == (0, 10, 950)
    assert writes(sim, seen) == []


def test_readmit_off_keeps_returning_leavers_out(tmp_path: Path, sim: Sim,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = direct_config(tmp_path, sim, export="readmit = false")
    back = churn(tmp_path, sim, capsys, config)
    before = sim.client.members(LIST)
    records_before = records(sim, emails(BACK) | emails(OWN))
    seen = len(sim.client.requests())

    event = sync(capsys, config, back)
    c = event["counts"]
    assert event["status"] == "succeeded"
    assert (c["added"], c["skipped"], c["unchanged"], c["removed"]) == (0, 60, 900, 0), c
    assert contact_list_posts(sim, seen) == [] and writes(sim, seen) == []
    assert sim.client.members(LIST) == before
    assert records(sim, emails(BACK) | emails(OWN)) == records_before


def test_unsubscribed_by_another_client_never_by_this_export_is_never_resubscribed(
        tmp_path: Path, sim: Sim, capsys: pytest.CaptureFixture[str]) -> None:
    """Two ways in which an API unsubscription that is not this export's meets the export:
    ``newcomer`` was unsubscribed from the list before the export ever knew them, then enters the
    segment; ``changed`` is synced, another API client unsubscribes them, their data changes (so the
    export sends them), they leave and they come back. Neither is ever subscribed again."""
    config = direct_config(tmp_path, sim)
    newcomer, changed = email_of(person(500)), email_of(person(7))
    sim.client.add_contact(newcomer, lists={LIST: "unsubscribed"})  # an API-made unsubscription
    base = list(range(100))
    sync(capsys, config, snapshot(tmp_path, "base", base))
    sim.client.unsubscribe(changed, LIST, how="api")

    v1 = write_jsonl(tmp_path / "snap" / "v1.jsonl", make_segment(base, versions={7: 1}).profiles)
    event = sync(capsys, config, v1)
    assert (event["counts"]["updated"], event["counts"]["skipped"]) == (0, 1), event["counts"]
    gone = [i for i in base if i != 7]
    sync(capsys, config, snapshot(tmp_path, "gone", gone))  # `changed` leaves
    seen = len(sim.client.requests())
    event = sync(capsys, config, write_jsonl(tmp_path / "snap" / "both.jsonl",
                                             make_segment([*base, 500], versions={7: 1}).profiles))
    assert event["counts"]["added"] == 0 and event["counts"]["skipped"] == 2, event["counts"]
    assert contact_list_posts(sim, seen) == []
    for email in (newcomer, changed):
        record = sim.client.contact_list(email, LIST)
        assert record is not None and record["status"] == "2", (email, record)
    assert sim.client.stats()["resubscribed"] == 0


def test_a_leaver_another_client_had_unsubscribed_is_not_readmitted(
        tmp_path: Path, sim: Sim, capsys: pytest.CaptureFixture[str]) -> None:
    """Synced, then unsubscribed by another API client (an hour before the export's run, so the list
    record's stamps show it predates anything this export sent), then out of the segment: the export's
    own unsubscription changes nothing in ActiveCampaign (the record stays the other client's). When the
    contact comes back, this export never unsubscribed it, so it must not re-subscribe it."""
    config = direct_config(tmp_path, sim)
    other = email_of(person(7))
    base = list(range(100))
    sync(capsys, config, snapshot(tmp_path, "base", base))
    sim.client.freeze_time(datetime.now(UTC) - timedelta(hours=1))
    sim.client.unsubscribe(other, LIST, how="api")
    sim.client.freeze_time(None)
    theirs = sim.client.contact_list(other, LIST)
    assert theirs["status"] == "2" and theirs["campaign"] is None  # no trace of whose it was

    sync(capsys, config, snapshot(tmp_path, "gone", [i for i in base if i != 7]))
    assert sim.client.contact_list(other, LIST) == theirs  # the export's unsubscription changed nothing
    seen = len(sim.client.requests())
    event = sync(capsys, config, snapshot(tmp_path, "back", base))
    assert contact_list_posts(sim, seen) == [], "re-subscribed a contact this export never unsubscribed"
    assert sim.client.contact_list(other, LIST)["status"] == "2"
    assert event["counts"]["added"] == 0 and event["counts"]["skipped"] == 1, event["counts"]


def test_a_returning_leaver_on_the_exclusion_list_stays_out(tmp_path: Path, sim: Sim,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """ActiveCampaign refuses to subscribe an excluded address: that one is counted skipped, the others
    come back, and the run still succeeds."""
    config = direct_config(tmp_path, sim)
    sync(capsys, config, snapshot(tmp_path, "all", list(range(100))))
    sync(capsys, config, snapshot(tmp_path, "left", list(range(90))))
    excluded = email_of(person(95))
    sim.client.exclude(excluded)
    seen = len(sim.client.requests())
    event = sync(capsys, config, snapshot(tmp_path, "back", list(range(100))))
    assert event["status"] == "succeeded"
    assert (event["counts"]["added"], event["counts"]["skipped"]) == (9, 1), event["counts"]
    assert sim.client.contact_list(excluded, LIST)["status"] == "2"
    assert set(sim.subscribed(LIST)) == emails(range(100)) - {excluded}
    assert sorted(p["status"] for p in contact_list_posts(sim, seen)) in ([200] * 9, [200] * 9 + [422])
