"""Issue 4's must-shows against the simulator over HTTP: custom fields, tags, consent, reports, dry runs.

Every test runs the real command line (``main([...])``) against a real simulator; outcomes are read
back from the simulator's ``/_sim`` view and the state store, never from our own code's return values.
"""

from __future__ import annotations

import asyncio
import calendar
import csv
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.run.conftest import API_KEY, subscribed, write_config
from worker.cli import main
from worker.contacts.samples import write_jsonl
from worker.events.envelopes import now_iso
from worker.run.engine import Engine
from worker.settings import load_config
from worker.sim import SimClient, SimSettings
from worker.state import open_store

TIERS = ["Bronze", "Silver", "Gold"]
COLOURS = ["Red", "Green", "Blue"]
MAPPED_FIELDS = [
    {"title": "Nickname", "type": "text", "perstag": "NICKNAME"},
    {"title": "Score", "type": "number", "perstag": "SCORE"},
    {"title": "Birthday", "type": "date", "perstag": "BIRTHDAY"},
    {"title": "Last seen", "type": "datetime", "perstag": "LAST_SEEN"},
    {"title": "Loyalty tier", "type": "dropdown", "perstag": "LOYALTY_TIER", "options": TIERS},
    {"title": "Colours", "type": "listbox", "perstag": "COLOURS", "options": COLOURS},
]
# 40 fields in the account, the mapped ones last (ids 35-40): a client that reads only AC's default first
# page of 20 would miss every one of them.
ACCOUNT_FIELDS = [{"id": i, "title": f"Filler {i}", "type": "text", "perstag": f"FILLER_{i}"} for i in range(1, 35)]
ACCOUNT_FIELDS += [{"id": 35 + n, **f} for n, f in enumerate(MAPPED_FIELDS)]

FIELDS_TOML = """
[exports.vip.fields]
NICKNAME = "Nick"
SCORE = "Score"
BIRTHDAY = { field = "Birthday", date_format = "DD/MM/YYYY" }
"%LAST_SEEN%" = "LastSeen"
"Loyalty tier" = "Tier"
COLOURS = "Colours"
"""


@pytest.fixture
def sim_settings() -> SimSettings:
    return SimSettings(api_keys=(API_KEY,), processing_delay=0.2, rate_scale=20, fields=ACCOUNT_FIELDS)


def sync(capsys: pytest.CaptureFixture[str], config: Path, snapshot: Path, *extra: str) -> tuple[int, dict]:
    rc = main(["sync", "--config", str(config), "--export", "vip", "--snapshot", str(snapshot), *extra])
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else {}


def report(event: dict) -> list[dict[str, Any]]:
    path = Path(event["failures_uri"].removeprefix("file://"))
    return [json.loads(line) for line in path.read_text().splitlines()]


def report_csv(event: dict) -> list[dict[str, str]]:
    path = Path(event["failures_uri"].removeprefix("file://").replace("failures.jsonl", "failures.csv"))
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def writes(simc: SimClient, since: int = 0) -> list[dict]:
    return [r for r in simc.requests(since) if r["method"] != "GET"]


def sent_since(simc: SimClient, since: int) -> int:
    """Contacts in the bulk imports AC accepted after the first `since` requests of the log."""
    return sum(r["contacts"] for r in simc.requests(since) if r["method"] == "POST"
               and r["path"].endswith("/import/bulk_import") and r["status"] == 200)


# ------------------------------------------------------------------------------------------ 1. typed fields
def typed_profile(i: int) -> tuple[dict[str, Any], dict[str, str]]:
    """Person i with six custom field values in assorted input forms, and what AC must end up holding."""
    day, month, year = 1 + i % 28, 1 + i % 12, 1980 + i % 20
    birthday = [f"{day:02d}/{month:02d}/{year}", f"{year}-{month:02d}-{day:02d}",
                calendar.timegm((year, month, day, 0, 0, 0))][i % 3]
    seen = 1_700_000_000 + i * 3607
    last_seen = seen if i % 2 else datetime.fromtimestamp(seen, timezone(timedelta(hours=2))).isoformat()
    score = [i, f"{i}.50", f" {i} "][i % 3]
    profile = {"EmailAddress": f"user{i}@example.com", "FirstName": f"F{i}", "Nick": f"nick {i}",
               "Score": score, "Birthday": birthday, "LastSeen": last_seen,
               "Tier": ["gold", "Silver", " BRONZE "][i % 3], "Colours": ["blue", "Red"] if i % 2 else "Green"}
    expected = {"NICKNAME": f"nick {i}", "SCORE": f"{i}.5" if i % 3 == 1 else str(i),
                "BIRTHDAY": f"{year}-{month:02d}-{day:02d}",
                "LAST_SEEN": datetime.fromtimestamp(seen, UTC).isoformat(timespec="seconds"),
                "LOYALTY_TIER": ["Gold", "Silver", "Bronze"][i % 3],
                "COLOURS": "||Red||Blue||" if i % 2 else "||Green||"}
    return profile, expected


def test_six_typed_custom_fields_arrive_converted_and_a_bad_date_fails_only_its_contact(tmp_path, capsys, sim):
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=20, export=FIELDS_TOML)
    people = [typed_profile(i) for i in range(300)]
    profiles = [p for p, _ in people]
    profiles[7] = {**profiles[7], "Birthday": "31/02/1990"}  # no such day
    rc, event = sync(capsys, config, write_jsonl(tmp_path / "a.jsonl", profiles))
    assert rc == 0, event
    assert event["counts"]["added"] == 299 and event["counts"]["invalid"] == 1
    members = subscribed(simc)
    assert "user7@example.com" not in members and len(members) == 299
    for i, (_, expected) in enumerate(people):
        if i != 7:
            assert members[f"user{i}@example.com"]["fields"] == expected, i
    # the field list was read to its end (40 fields), and nothing was dropped on the way
    assert [r for r in simc.requests() if r["path"].endswith("/fields")]
    assert simc.stats().get("ignored_field_values", 0) == 0
    (record,) = report(event)
    assert record["email"] == "user7@example.com" and record["stage"] == "invalid" and record["line"] == 8
    assert "BIRTHDAY" in record["reason"] and "'31/02/1990' is not a date" in record["reason"]


@pytest.mark.parametrize("sim_settings", [SimSettings(
    api_keys=(API_KEY,), processing_delay=0.2, rate_scale=20,
    fields=[{"id": i, "title": f"Field {i}", "type": "text", "perstag": f"F_{i}"} for i in range(1, 231)])])
def test_custom_fields_are_read_across_every_page(tmp_path, capsys, sim):
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=20, export='fields = { F_2 = "A", F_229 = "B" }')
    rc, event = sync(capsys, config, write_jsonl(tmp_path / "a.jsonl", [
        {"EmailAddress": "a@example.com", "A": "first page", "B": "third page"}]))
    assert rc == 0, event
    assert subscribed(simc)["a@example.com"]["fields"] == {"F_2": "first page", "F_229": "third page"}
    assert len([r for r in simc.requests() if r["path"].endswith("/fields")]) == 3  # 100 + 100 + 30


# ------------------------------------------------------------------------------------------ 2. 1% changed
def test_changing_one_custom_field_of_one_percent_sends_exactly_those(tmp_path, capsys, sim):
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=20, export='fields = { NICKNAME = "Nick", SCORE = "Score" }')
    profiles = [{"EmailAddress": f"user{i}@example.com", "Nick": f"n{i}", "Score": i} for i in range(1000)]
    rc, event = sync(capsys, config, write_jsonl(tmp_path / "a.jsonl", profiles))
    assert rc == 0 and event["counts"]["added"] == 1000
    changed = set(range(0, 1000, 100))  # 1%
    second = [dict(p) for p in profiles]
    for i in changed:
        second[i]["Score"] = i + 0.25
    for i in range(1, 200, 10):  # the same value, written differently: not a change
        second[i]["Score"] = f"{i}.0"
    before = len(simc.requests())
    rc, event = sync(capsys, config, write_jsonl(tmp_path / "b.jsonl", second))
    assert rc == 0, event
    c = event["counts"]
    assert (c["updated"], c["unchanged"], c["added"], c["removed"]) == (10, 990, 0, 0)
    assert sent_since(simc, before) == 10
    members = subscribed(simc)
    for i in changed:
        assert members[f"user{i}@example.com"]["fields"]["SCORE"] == f"{i}.25"


# ------------------------------------------------------------------------------------------ 3. unknown field
def test_a_field_that_does_not_exist_fails_before_any_bulk_request(tmp_path, capsys, sim):
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=20,
                          export='fields = { NICKNAME = "Nick", FAVOURITE_SHOP = "Shop" }')
    rc, event = sync(capsys, config, write_jsonl(tmp_path / "a.jsonl", [{"EmailAddress": "a@example.com"}]))
    assert rc == 1 and event["type"] == "export.failed"
    assert event["error"]["code"] == "unknown_field" and "'FAVOURITE_SHOP'" in event["error"]["message"]
    assert "NICKNAME" not in event["error"]["message"]  # only the field that is wrong
    assert writes(simc) == [] and simc.members(3) == {}

    # config check --online reports the same, in a table, and exits 2
    assert main(["config", "check", "--config", str(config), "--online"]) == 2
    out = capsys.readouterr().out
    header, row = out.splitlines()[:2]
    assert header.split() == ["CONNECTION", "EXPORT", "LIST", "FIELDS", "RESOLVED", "PROBLEMS"]
    assert row.startswith("sim") and "vip" in row and "3 VIP" in row and "NICKNAME=#35 text" in row
    assert "'FAVOURITE_SHOP'" in row and "matches no field" in row
    assert writes(simc) == []


def test_config_check_online_passes_a_good_config_and_names_every_problem(tmp_path, capsys, sim, monkeypatch):
    url, _ = sim
    good = write_config(tmp_path, url, rate_scale=20, export=FIELDS_TOML)
    assert main(["config", "check", "--config", str(good), "--online"]) == 0
    out = capsys.readouterr().out
    assert "3 VIP" in out and "BIRTHDAY=#37 date" in out and "Loyalty tier=#39 dropdown" in out
    assert "no problems" in out
    bad_list = tmp_path / "bad.toml"
    bad_list.write_text(good.read_text().replace("list_id = 3", "list_id = 99"))
    assert main(["config", "check", "--config", str(bad_list), "--online"]) == 2
    assert "exports.vip.list_id: ActiveCampaign has no list 99" in capsys.readouterr().out
    monkeypatch.setenv("SEGMENT_EXPORT_TEST_KEY", "wrong-key")
    assert main(["config", "check", "--config", str(good), "--online"]) == 2
    out = capsys.readouterr().out
    assert "refused the API key" in out and "wrong-key" not in out and API_KEY not in out


def test_max_profiles_fails_before_anything_is_sent(tmp_path, capsys, sim):
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=20, export="max_profiles = 250")
    profiles = [{"EmailAddress": f"user{i}@example.com"} for i in range(1200)]
    rc, event = sync(capsys, config, write_jsonl(tmp_path / "a.jsonl", profiles))
    assert rc == 1 and event["error"]["code"] == "too_many_profiles"
    assert "1,200 profiles" in event["error"]["message"] and "max_profiles = 250" in event["error"]["message"]
    assert writes(simc) == [] and simc.members(3) == {}
    rc, event = sync(capsys, config, write_jsonl(tmp_path / "b.jsonl", profiles[:250]))
    assert rc == 0 and event["counts"]["added"] == 250


# ------------------------------------------------------------------------------------------ 4. consent
def test_unsubscribed_in_activecampaign_stay_so_across_three_runs_and_are_not_resent(tmp_path, capsys, sim):
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=20, export='fields = { NICKNAME = "Nick" }')

    def segment(version: int, ids: range | list[int] = range(300)) -> Path:
        rows = [{"EmailAddress": f"user{i}@example.com", "Nick": f"n{i}-v{version}"} for i in ids]
        return write_jsonl(tmp_path / f"v{version}.jsonl", rows)

    rc, event = sync(capsys, config, segment(0))
    assert rc == 0 and event["counts"]["added"] == 300
    opted_ids = (3, 50, 120, 200, 299)
    opted_out = [f"user{i}@example.com" for i in opted_ids]
    for email in opted_out:
        simc.unsubscribe(email, 3)  # "a user" unsubscribes in ActiveCampaign
    simc.add_contact("user10@example.com", lists={1: "subscribed"})  # also on another list
    sent_per_run = []
    for run, version in enumerate((1, 1, 2)):  # all changed; nothing changed; all changed again
        before = len(simc.requests())
        rc, event = sync(capsys, config, segment(version))
        assert rc == 0, event
        assert event["counts"]["skipped"] == 5 and event["counts"]["failed"] == 0, (run, event["counts"])
        members = simc.members(3)
        assert all(members[e]["status"] == "unsubscribed" for e in opted_out)
        for i in opted_ids:  # a skipped contact is not touched at all
            assert members[f"user{i}@example.com"]["fields"]["NICKNAME"] == f"n{i}-v0"
        assert simc.stats()["resubscribed"] == 0
        sent_per_run.append(sent_since(simc, before))
        assert {r["stage"] for r in report(event)} == {"skipped"}
        assert sorted(r["email"] for r in report(event)) == sorted(opted_out)
    # run 1 sent everyone (AC skipped the five); later runs never sent the five again
    assert sent_per_run == [300, 0, 295]

    # leaving the segment unsubscribes from this list only; opted-out leavers are forgotten, not sent
    before = len(simc.requests())
    rc, event = sync(capsys, config, segment(2, [i for i in range(300) if i not in (10, 50)]))
    assert rc == 0 and event["counts"]["removed"] == 1
    assert sent_since(simc, before) == 1
    contact = simc.contact("user10@example.com")
    assert contact is not None and contact["lists"] == {"1": "subscribed", "3": "unsubscribed"}


# ------------------------------------------------------------------------------------------ 5. tags
def test_tags_from_a_profile_field_good_ones_applied_bad_ones_reported(tmp_path, capsys, sim):
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=20,
                          export='tags = ["segment:vip"]\ntag_field = "Interests"\ntag_separator = ";"')
    rows: list[dict[str, Any]] = [
        {"EmailAddress": "list@example.com", "Interests": ["golf", " tennis ", "", "GOLF"]},
        {"EmailAddress": "text@example.com", "Interests": " sailing ;; chess ;"},
        {"EmailAddress": "none@example.com", "Interests": None},
        {"EmailAddress": "absent@example.com"},
        {"EmailAddress": "empty@example.com", "Interests": []},
        {"EmailAddress": "number@example.com", "Interests": 42},
        {"EmailAddress": "nullitem@example.com", "Interests": ["golf", None]},
        {"EmailAddress": "nested@example.com", "Interests": ["golf", ["chess"]]},
        {"EmailAddress": "object@example.com", "Interests": {"golf": True}},
        {"EmailAddress": "bool@example.com", "Interests": True},
    ]
    rc, event = sync(capsys, config, write_jsonl(tmp_path / "a.jsonl", rows))
    assert rc == 0, event
    assert event["counts"]["added"] == 5 and event["counts"]["invalid"] == 5
    members = subscribed(simc)
    assert sorted(members["list@example.com"]["tags"]) == ["golf", "segment:vip", "tennis"]
    assert sorted(members["text@example.com"]["tags"]) == ["chess", "sailing", "segment:vip"]
    for email in ("none@example.com", "absent@example.com", "empty@example.com"):
        assert members[email]["tags"] == ["segment:vip"]
    records = {r["email"]: r for r in report(event)}
    assert set(records) == {"number@example.com", "nullitem@example.com", "nested@example.com",
                            "object@example.com", "bool@example.com"}
    assert all(r["stage"] == "invalid" and r["reason"].startswith("tag field 'Interests': ")
               for r in records.values())
    assert "a number" in records["number@example.com"]["reason"]
    assert "null" in records["nullitem@example.com"]["reason"]
    assert "a list" in records["nested@example.com"]["reason"]


# ------------------------------------------------------------------------------------------ 6. the report
def test_failure_report_lists_each_invalid_failed_and_skipped_contact_once(tmp_path, capsys, sim):
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=20, export='fields = { SCORE = "Score" }')
    rows: list[dict[str, Any]] = [{"EmailAddress": f"ok{i}@example.com", "Score": i} for i in range(40)]
    rows[5] = {"EmailAddress": "bad-email@@example.com"}
    rows[6] = {"EmailAddress": "bad-score@example.com", "Score": "a lot"}
    rows[7] = {"EmailAddress": "excluded@example.com", "Score": 1}
    rows[8] = {"EmailAddress": "optedout@example.com", "Score": 2}
    rows.append({"EmailAddress": "OK1@example.com", "Score": 1})  # a duplicate: synced once, not a failure
    simc.exclude("excluded@example.com")
    simc.unsubscribe("optedout@example.com", 3)
    rc, event = sync(capsys, config, write_jsonl(tmp_path / "a.jsonl", rows))
    assert rc == 3 and event["status"] == "partial", event
    c = event["counts"]
    assert (c["invalid"], c["failed"], c["skipped"], c["duplicates"], c["added"]) == (2, 1, 1, 1, 36)
    records = report(event)
    assert sorted(r["email"] for r in records) == ["bad-email@@example.com", "bad-score@example.com",
                                                   "excluded@example.com", "optedout@example.com"]
    by_email = {r["email"]: r for r in records}
    assert (by_email["bad-email@@example.com"]["stage"], by_email["bad-email@@example.com"]["line"]) == ("invalid", 6)
    assert "malformed email" in by_email["bad-email@@example.com"]["reason"]
    assert (by_email["bad-score@example.com"]["stage"], by_email["bad-score@example.com"]["line"]) == ("invalid", 7)
    assert "custom field SCORE" in by_email["bad-score@example.com"]["reason"]
    assert by_email["excluded@example.com"]["stage"] == "failed"
    assert "ActiveCampaign did not import" in by_email["excluded@example.com"]["reason"]
    assert by_email["optedout@example.com"]["stage"] == "skipped"
    assert by_email["optedout@example.com"]["reason"] == "unsubscribed_in_activecampaign"
    assert all(r["reason"] for r in records)
    # the CSV holds the same rows
    assert sorted((r["email"], r["stage"], r["reason"]) for r in report_csv(event)) == \
        sorted((r["email"], r["stage"], r["reason"]) for r in records)
    # the event: counts and the URI only, no profile data
    text = json.dumps(event)
    assert "@" not in text.replace(event["failures_uri"], "")
    assert event["failures_uri"].startswith("file://") and "error" not in event


@pytest.mark.parametrize("sim_settings", [SimSettings(api_keys=(API_KEY,), processing_delay=0.2, rate_scale=20,
                                                      contact_limit=260)])
def test_contact_limit_is_reported_in_words_an_admin_understands(tmp_path, capsys, sim):
    url, _ = sim
    config = write_config(tmp_path, url, rate_scale=20)
    rows = [{"EmailAddress": f"user{i}@example.com"} for i in range(300)]
    rc, event = sync(capsys, config, write_jsonl(tmp_path / "a.jsonl", rows))
    assert rc == 3 and event["counts"]["added"] == 260 and event["counts"]["failed"] == 40
    records = report(event)
    assert len(records) == 40 and all(r["stage"] == "failed" and r["operation"] == "add" for r in records)
    assert all("contact limit" in r["reason"] and "Raise the limit" in r["detail"] for r in records)


# ------------------------------------------------------------------------------------------ 7. dry runs
def test_dry_run_previews_with_samples_and_sends_no_write_request(tmp_path, capsys, sim):
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=20, export=FIELDS_TOML)
    people = [typed_profile(i)[0] for i in range(200)]
    rc, event = sync(capsys, config, write_jsonl(tmp_path / "a.jsonl", people))
    assert rc == 0 and event["counts"]["added"] == 200
    simc.unsubscribe("user0@example.com", 3)
    rc, event = sync(capsys, config, write_jsonl(tmp_path / "b.jsonl", [{**p, "Nick": "x"} for p in people]))
    assert event["counts"]["skipped"] == 1  # known from now on
    state = tmp_path / "state"
    files_before = sorted((p, p.stat().st_mtime_ns) for p in state.rglob("*") if p.is_file())
    log_before = len(simc.requests())

    # the next refresh: 30 changed (one of them the opted-out user0), 25 left, 40 new, 3 invalid
    nxt = [{**p, "Nick": "changed" if i < 30 else "x"} for i, p in enumerate(people[:175])]
    nxt += [typed_profile(i)[0] for i in range(200, 240)]
    nxt += [{"EmailAddress": "broken@example.com", "Birthday": "yesterday"}, {"EmailAddress": "no-at"},
            {"EmailAddress": "x@example.com", "Tier": "Platinum"}]
    snap = write_jsonl(tmp_path / "c.jsonl", nxt)
    rc, preview = sync(capsys, config, snap, "--dry-run")
    assert rc == 0 and preview["dry_run"] is True
    c = preview["counts"]
    assert (c["added"], c["updated"], c["removed"], c["invalid"], c["skipped"]) == (40, 29, 25, 3, 1)
    s = preview["samples"]
    assert [len(s[k]) for k in ("add", "update", "remove", "invalid", "skipped")] == [20, 20, 20, 3, 1]
    assert all("***" in row["email"] for rows in s.values() for row in rows if row.get("email"))
    assert s["add"][0]["fields"]["BIRTHDAY"] and s["add"][0]["fields"]["Loyalty tier"]  # named as the export does
    assert {r["line"] for r in s["invalid"]} == {216, 217, 218}
    assert not re.search(r"user\d+@", json.dumps(preview))  # no address leaks through the samples
    shown = sync(capsys, config, snap, "--dry-run", "--show-emails")[1]
    assert any(row["email"].startswith("user2") for row in shown["samples"]["add"])

    # request --dry-run previews the same (here, without a broker) and publishes nothing
    rc = main(["request", "--config", str(config), "--export", "vip", "--snapshot", str(snap), "--dry-run"])
    requested = json.loads(capsys.readouterr().out)
    assert rc == 0 and requested["counts"] == c

    # proof: no write request reached ActiveCampaign, and the state store did not change
    assert writes(simc, log_before) == []
    assert sorted((p, p.stat().st_mtime_ns) for p in state.rglob("*") if p.is_file()) == files_before


def test_dry_run_says_when_a_run_would_fail(tmp_path, capsys, sim):
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=20, export="max_profiles = 10")
    snap = write_jsonl(tmp_path / "a.jsonl", [{"EmailAddress": f"u{i}@example.com"} for i in range(11)])
    rc, preview = sync(capsys, config, snap, "--dry-run")
    assert rc == 1 and preview["would_fail"]["code"] == "too_many_profiles" and preview["counts"]["added"] == 11
    assert "11 profiles" in preview["would_fail"]["message"]
    # request --dry-run without --snapshot uses the segment's last known snapshot, as a worker would
    rc = main(["request", "--config", str(config), "--export", "vip", "--dry-run"])
    assert rc == 2 and "no known snapshot" in capsys.readouterr().err
    engine = Engine(load_config(config), open_store(f"file://{tmp_path / 'state'}"))
    asyncio.run(engine.remember_snapshot("vip", {"uri": str(snap), "format": "jsonl"}, "r1", now_iso()))
    rc = main(["request", "--config", str(config), "--export", "vip", "--dry-run"])
    requested = json.loads(capsys.readouterr().out)
    assert rc == 1 and requested["snapshot"] == str(snap) and requested["counts"]["added"] == 11
    assert writes(simc) == []
