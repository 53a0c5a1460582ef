"""Issue 19's reproductions, end to end: a real worker process, RabbitMQ, the simulator (and moto's S3).

1. What an event may make the worker read: ``..``, ``%2e%2e``, ``%2F..``, a relative URI, a sibling of a
   prefix written without a trailing slash (a folder and a bucket), a link under the prefix. Each went
   through before (20 members synced from outside the prefix); now each is dead-lettered with the reason
   ``forbidden_uri`` and nothing reaches ActiveCampaign, while a snapshot inside the prefix still syncs.
5. A link inside an allowed snapshot folder that points outside: the run fails (``snapshot_unreadable``)
   before any request.
2. A snapshot that is damaged late (an open quote on row 851 of 1,000; a quote that swallows past the
   128 KiB field limit in 20,000 rows; an invalid UTF-8 byte): before, the run succeeded without the rows
   after the damage and unsubscribed them (150 members) or added a truncated segment; now it fails with
   ``snapshot_unreadable`` naming the file, line and reason, and no write request reaches ActiveCampaign.
   Third review: two stray quotes that make the rows between them one well-formed value, and a part of
   0 bytes in a folder (an upload cut short), fail the same way instead of unsubscribing those members.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, RabbitBroker, Sim, refreshed, run_id_for, wait_for, write_config
from worker.contacts.samples import make_segment, person, write_jsonl

REASON_CLASS = "x-segment-export-error-class"
REASON = "x-segment-export-error"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _writes(sim: Sim, since: int = 0) -> list[dict]:
    """Requests that change something in ActiveCampaign (anything but a read)."""
    return [r for r in sim.client.requests()[since:] if r["method"] != "GET"]


def _prefixes(config: Path, prefixes: list[str]) -> Path:
    text = re.sub(r"^snapshot_prefixes = .*$", "snapshot_prefixes = [" + ", ".join(f'"{p}"' for p in prefixes)
                  + "]", config.read_text(), flags=re.M)
    config.write_text(text)
    return config


def test_an_event_cannot_make_the_worker_read_outside_its_prefixes(
        tmp_path: Path, sim: Sim, rabbit: RabbitBroker, workers, s3_bucket: str) -> None:
    import boto3

    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    secret = make_segment(range(20), seed=9)
    write_jsonl(outside / "secret.jsonl", secret.profiles)
    write_jsonl(tmp_path / "allowed-other" / "x.jsonl", secret.profiles)
    good = make_segment(range(100, 130), seed=1)
    write_jsonl(allowed / "vip" / "seg.jsonl", good.profiles)
    (allowed / "link").symlink_to(outside, target_is_directory=True)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=f"{s3_bucket}-evil")
    s3.put_object(Bucket=f"{s3_bucket}-evil", Key="x.jsonl",
                  Body=(outside / "secret.jsonl").read_bytes())
    # both prefixes written without a trailing slash: they are folders, not string prefixes
    config = _prefixes(write_config(tmp_path, sim, rabbit), [f"file://{allowed}", f"s3://{s3_bucket}"])
    worker = workers(config)

    climbs = "%2F..".join([""] * (len(allowed.parts)))  # enough '/..' to reach / from the prefix
    hostile = [
        f"file://{allowed}/../outside/secret.jsonl",
        f"file://{allowed}/%2e%2e/outside/secret.jsonl",
        f"file://{allowed}/%2E%2E/%2e%2E/{tmp_path.name}/outside/secret.jsonl",
        f"file://{allowed}/{climbs}%2Fetc/passwd",
        "file://./" + os.path.relpath(allowed, ROOT) + "/../outside/secret.jsonl",  # the worker runs in ROOT
        f"file://{tmp_path}/allowed-other/x.jsonl",                                 # a sibling folder
        f"file://{allowed}/link/secret.jsonl",                                      # a link under the prefix
        f"s3://{s3_bucket}-evil/x.jsonl",                                           # a sibling bucket
    ]
    seen = len(sim.client.requests())
    for i, uri in enumerate(hostile):
        event = refreshed(outside / "unused.jsonl", refresh_id=f"hostile-{i}")
        event["snapshot"]["uri"] = uri
        rabbit.publish(event)
    nowhere = refreshed(outside / "unused.jsonl", refresh_id="nowhere")
    nowhere["snapshot"]["uri"] = f"file://otherhost{allowed}/x.jsonl"  # names no place this worker has
    rabbit.publish(nowhere)
    credentials = refreshed(outside / "unused.jsonl", refresh_id="credentials")
    credentials["snapshot"]["uri"] = f"s3://AKIAEXAMPLE:hunter2/K7MDENG/bPx@{s3_bucket}/vip/x.jsonl"  # '/' as in AWS
    rabbit.publish(credentials)
    rabbit.publish(refreshed(allowed / "vip" / "seg.jsonl", refresh_id="good"))

    rabbit.wait_completions(1, 90, check=worker.assert_alive, run_id=run_id_for("vip", "good"))
    wait_for(lambda: len(rabbit.read_dead()) >= len(hostile) + 2, 60, f"{len(hostile) + 2} dead-lettered events",
             check=worker.assert_alive)
    rabbit.wait_idle(60, check=worker.assert_alive)

    dead = {_text(headers[REASON]): _text(headers[REASON_CLASS]) for _, headers in rabbit.read_dead()}
    assert len(rabbit.read_dead()) == len(hostile) + 2
    assert sorted(dead.values()) == ["bad_uri"] * 2 + ["forbidden_uri"] * len(hostile)
    for reason, reason_class in dead.items():
        if reason_class == "forbidden_uri":
            # the publisher learns that the URI is outside, never which prefixes are allowed (review defect 9)
            assert "is outside the snapshot prefixes this worker reads" in reason
            assert f"file://{allowed}/," not in reason and f"s3://{s3_bucket}/" not in reason, reason
            assert "snapshot_prefixes:" not in reason and "it means" not in reason
        else:
            assert "names a remote host" in reason or "holds credentials before the bucket" in reason
    assert f"s3://***@{s3_bucket}/vip/x.jsonl" in "".join(dead)  # credentials masked (review defect 7) ...
    assert "hunter2" not in "".join(dead) and "hunter2" not in worker.text()  # ... in the reason and the log
    assert f"snapshot_prefixes: file://{allowed}/, s3://{s3_bucket}/" in worker.text()  # the log names them
    assert sorted(e["refresh_id"] for e in rabbit.read_events()) == ["good"], "a hostile event made a run"
    assert all(e["counts"]["added"] == len(good.expected) for e in rabbit.completions())
    sim.assert_list_exact(3, good.expected)  # nobody from outside the prefix
    assert len(_writes(sim, seen)) >= 1  # the good run wrote; the hostile ones are not on the list above
    assert "snapshot_prefixes is not set" not in worker.text()


def test_a_link_inside_an_allowed_folder_fails_the_run_before_any_request(
        tmp_path: Path, sim: Sim, rabbit: RabbitBroker, workers) -> None:
    write_jsonl(tmp_path / "outside" / "secret.jsonl", make_segment(range(20), seed=9).profiles)
    write_jsonl(tmp_path / "snap" / "part-0000.jsonl", make_segment(range(100, 130), seed=1).profiles)
    (tmp_path / "snap" / "part-0001.jsonl").symlink_to(tmp_path / "outside" / "secret.jsonl")
    worker = workers(write_config(tmp_path, sim, rabbit))
    seen = len(sim.client.requests())
    rabbit.publish(refreshed(tmp_path / "snap", refresh_id="linked"))

    failed = wait_for(lambda: [e for e in rabbit.read_events() if e["type"] == "export.failed"], 90,
                      "export.failed", check=worker.assert_alive)
    assert failed[0]["error"]["code"] == "snapshot_unreadable"
    assert "part part-0001.jsonl is a symbolic link to" in failed[0]["error"]["message"]
    assert "outside the snapshot's folder" in failed[0]["error"]["message"]
    assert _writes(sim, seen) == [] and sim.subscribed(3) == {}


def _csv(rows: list[dict]) -> str:
    out = io.StringIO(newline="")
    w = csv.DictWriter(out, ["EmailAddress", "FirstName", "LastName", "Phone"], extrasaction="ignore",
                       lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()


def _csv_event(path: Path, refresh_id: str) -> dict:
    event = refreshed(path, refresh_id=refresh_id)
    event["snapshot"]["format"] = "csv"
    return event


def _break(text: str, row: int, how: str) -> bytes:
    """The CSV text with data row ``row`` (1-based) damaged: its last field opens a quote, or a bad byte."""
    lines = text.split("\n")
    if how == "open-quote":  # the issue's row: 'u850@example.com,"Bob' (an open quote, nothing closes it)
        cells = lines[row].split(",")
        lines[row] = ",".join([cells[0], '"' + cells[1]])
        return "\n".join(lines).encode()
    if how == "stray-quotes":  # "O'Brien typed with a quote on this row, Smith" on a row 15 lines further
        for at, mark in ((row, lambda v: '"' + v), (row + 15, lambda v: v + '"')):
            cells = lines[at].split(",")
            cells[2] = mark(cells[2])
            lines[at] = ",".join(cells)
        return "\n".join(lines).encode()
    data = "\n".join(lines).encode()
    at = len("\n".join(lines[:row]).encode()) + 3
    return data[:at] + b"\xff" + data[at:]


@pytest.mark.parametrize(("how", "size", "row", "first_sync", "says"), [
    ("open-quote", 1000, 851, True, "the row starting on line 852 (read to line 1001) opens a quoted value that "
                                     "is never closed"),
    ("open-quote", 20000, 5000, False, "the row starting on line 5001 (read to line"),
    ("bad-byte", 1000, 900, True, "is not UTF-8: line 901 holds an invalid byte (invalid start byte)"),
    ("stray-quotes", 100, 80, True, "line 82 is inside a quoted value that starts on line 81 and reads as a row of "
                                    "its own (it holds an email address): two stray quotes"),
], ids=["open-quote-at-851-after-a-sync", "quote-past-the-field-limit-first-run", "invalid-utf8-at-900",
        "two-stray-quotes-swallow-15-rows"])
def test_a_damaged_snapshot_fails_the_run_before_any_request(
        tmp_path: Path, sim: Sim, rabbit: RabbitBroker, workers, how: str, size: int, row: int,
        first_sync: bool, says: str) -> None:
    people = [person(i) for i in range(size)]
    snap = tmp_path / "snap"
    snap.mkdir()
    worker = workers(write_config(tmp_path, sim, rabbit))
    members: dict = {}
    if first_sync:
        (snap / "whole.csv").write_text(_csv(people))
        rabbit.publish(_csv_event(snap / "whole.csv", "whole"))
        rabbit.wait_completions(1, 120, check=worker.assert_alive)
        members = sim.subscribed(3)
        assert len(members) == size
    damaged = _break(_csv(people), row, how)
    if size > 1000:  # the swallowed text must pass the 128 KiB field limit: it does, with 15,000 rows after it
        assert len(damaged) - damaged.index(b'"') > 131_072
    (snap / "damaged.csv").write_bytes(damaged)
    seen = len(sim.client.requests())
    rabbit.publish(_csv_event(snap / "damaged.csv", "damaged"))

    failed = wait_for(lambda: [e for e in rabbit.read_events() if e["type"] == "export.failed"], 120,
                      "export.failed", check=worker.assert_alive)
    rabbit.wait_idle(60, check=worker.assert_alive)
    error = failed[0]["error"]
    assert error["code"] == "snapshot_unreadable", error
    assert f"snapshot file://{snap}/damaged.csv" in error["message"] and says in error["message"], error["message"]
    assert _writes(sim, seen) == [], "a write request reached ActiveCampaign before the run failed"
    assert sim.subscribed(3) == members  # nobody unsubscribed, nobody added from half a file
    assert [e["refresh_id"] for e in rabbit.completions()] == (["whole"] if first_sync else [])


@pytest.mark.parametrize("name", ["part-0001.csv", "part-0001.csv.gz"])
def test_a_zero_byte_part_fails_the_run_instead_of_unsubscribing_its_members(
        tmp_path: Path, sim: Sim, rabbit: RabbitBroker, workers, name: str) -> None:
    """Third review: a part whose upload was cut at 0 bytes was read as "no rows" and its 10 members left."""
    people = [person(i) for i in range(100)]
    worker = workers(write_config(tmp_path, sim, rabbit))
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    for folder in (whole, cut):
        folder.mkdir()
        (folder / "part-0000.csv").write_text(_csv(people[:90]))
    (whole / "part-0001.csv").write_text(_csv(people[90:]))
    (cut / name).write_bytes(b"")
    rabbit.publish(_csv_event(whole, "whole"))
    rabbit.wait_completions(1, 120, check=worker.assert_alive)
    members = sim.subscribed(3)
    assert len(members) == 100
    seen = len(sim.client.requests())
    rabbit.publish(_csv_event(cut, "cut"))

    failed = wait_for(lambda: [e for e in rabbit.read_events() if e["type"] == "export.failed"], 120,
                      "export.failed", check=worker.assert_alive)
    rabbit.wait_idle(60, check=worker.assert_alive)
    error = failed[0]["error"]
    assert error["code"] == "snapshot_unreadable", error
    assert f"snapshot part file://{cut}/{name} is empty (0 bytes): a part cut short?" in error["message"], error
    assert _writes(sim, seen) == [] and sim.subscribed(3) == members
    assert failed[0]["run_id"] == run_id_for("vip", "cut")


def _deep_jsonl(path: Path) -> str:
    deep = b'{"EmailAddress":"a@example.com","n":1234567890123456789012,"x":' + b"[" * 1000 + b"]" * 1000 + b"}\n"
    path.write_bytes(deep)
    return "line 1 nests objects or arrays too deep"


def _parquet_column_twice(path: Path) -> str:
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.Table.from_arrays([pa.array(["a@example.com"]), pa.array(["b@example.com"])],
                                        names=["EmailAddress", "EmailAddress"]), path)
    return "has the column 'EmailAddress' twice"


def _parquet_far_timestamp(path: Path) -> str:
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"EmailAddress": ["a@example.com", "b@example.com"],
                             "FirstName": pa.array([0, 2**62], pa.timestamp("ms"))}), path)
    return "column 'FirstName' of row 2 holds a timestamp outside the years 0001-9999"


@pytest.mark.parametrize(("name", "make"), [
    ("deep.jsonl", _deep_jsonl), ("twice.parquet", _parquet_column_twice), ("far.parquet", _parquet_far_timestamp),
], ids=["jsonl-nested-1000-deep", "parquet-column-twice", "parquet-timestamp-past-9999"])
def test_a_file_the_parser_chokes_on_fails_the_run_once_instead_of_retrying_into_the_dlq(
        tmp_path: Path, sim: Sim, rabbit: RabbitBroker, workers, name: str, make) -> None:
    """Third review: KeyError / RecursionError from a parser were retried with backoff and dead-lettered with no
    ``export.failed``; an out-of-range timestamp reached ActiveCampaign as junk text."""
    worker = workers(write_config(tmp_path, sim, rabbit, worker="run_retry_base_seconds = 1"))
    path = tmp_path / name
    says = make(path)
    event = refreshed(path, refresh_id="hostile")
    event["snapshot"]["format"] = name.rsplit(".", 1)[1]
    seen = len(sim.client.requests())
    rabbit.publish(event)
    failed = wait_for(lambda: [e for e in rabbit.read_events() if e["type"] == "export.failed"], 120,
                      "export.failed", check=worker.assert_alive)
    rabbit.wait_idle(60, check=worker.assert_alive)
    error = failed[0]["error"]
    assert error["code"] == "snapshot_unreadable" and says in error["message"], error
    assert len([e for e in rabbit.read_events() if e["type"] == "export.failed"]) == 1  # once, not per retry
    assert rabbit.read_dead() == [], "the delivery was dead-lettered instead of failing the run"
    assert _writes(sim, seen) == [] and sim.subscribed(3) == {}
