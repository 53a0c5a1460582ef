"""Issue 18, must-show 4: `segment-export forget` leaves no file in the state store holding the emails' bytes
(searched raw and in every zlib stream of every file: shards' emails and tags sections included), with
`--delete-contact` the contact is gone from the simulator, and it prints counts, never an email."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import zlib
from pathlib import Path

from tests.run.conftest import bulk_posts, wait_for, write_config
from worker.cli import main
from worker.contacts.samples import write_jsonl

SHORT_LEASE = "lease_seconds = 3\nrequest_timeout_seconds = 1"  # a killed run's lease lapses fast

def person(i: int, version: int = 0) -> dict:
    return {"EmailAddress": f"member{i}@example.com", "FirstName": f"M{i}v{version}", "Interests": f"topic-{i % 3}"}


def searchable(data: bytes) -> bytes:
    """The file's bytes and the content of every zlib stream in it, however the file is laid out."""
    found = [data]
    for at in range(len(data) - 1):
        if data[at] == 0x78 and data[at + 1] in (0x01, 0x5E, 0x9C, 0xDA):
            try:
                found.append(zlib.decompressobj().decompress(data[at:]))
            except zlib.error:
                continue
    return b"\n".join(found).lower()


def holding(state: Path, emails: list[str]) -> dict[str, list[str]]:
    """email -> the store's files that hold it."""
    hits: dict[str, list[str]] = {e: [] for e in emails}
    for path in state.rglob("*"):
        if path.is_file():
            text = searchable(path.read_bytes())
            for email in emails:
                if email.encode() in text:
                    hits[email].append(str(path.relative_to(state)))
    return hits


def test_forget_leaves_no_trace_in_the_store_and_deletes_the_contact(sim, tmp_path: Path, capsys) -> None:
    url, simc = sim
    export = 'tags = ["segment:vip"]\ntag_field = "Interests"\nmax_removal_fraction = 0.5'
    config = write_config(tmp_path, url, rate_scale=20, export=export, worker=SHORT_LEASE)
    gone, kept, refused = "member3@example.com", "member5@example.com", "blocked@excluded.example"
    people = [person(i) for i in range(400)]
    simc.exclude("*@excluded.example")
    sync = ["sync", "--config", str(config), "--export", "vip", "--snapshot"]
    first = [*people, {"EmailAddress": "Blocked@Excluded.example"}]
    assert main([*sync, str(write_jsonl(tmp_path / "r1.jsonl", first))]) == 3
    assert simc.delete_contact(gone)  # someone deleted it in AC: verify's report names it
    assert main(["verify", "--config", str(config), "--export", "vip"]) == 3
    # a run that changes `kept` and dies after its first bulk import: its plan part and batch record hold it
    slow = tmp_path / "slow.toml"
    slow.write_text(config.read_text().replace("requests_per_second = 100.0", "requests_per_second = 1.0"))
    changed = [person(i, 1 if i in (5, 6, 7) else 0) for i in range(400)]
    before = len(bulk_posts(simc))
    proc = subprocess.Popen([sys.executable, "-m", "worker", "sync", "--config", str(slow), "--export", "vip",
                             "--snapshot", str(write_jsonl(tmp_path / "r2.jsonl", changed))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(bulk_posts(simc)) > before and list((tmp_path / "state").rglob("*.accepted")), 60,
                 "the changed contacts' bulk import, recorded")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    capsys.readouterr()
    targets = [gone, kept, refused]
    before_forget = holding(tmp_path / "state", targets)
    assert any("/shards/" in f for f in before_forget[kept]) and any("/parts/part-" in f for f in before_forget[kept])
    assert any(f.endswith("failures.csv") for f in before_forget[refused])
    assert any(f.endswith("report.json") for f in before_forget[gone])
    assert simc.contact(kept) is not None

    rc = main(["forget", "--config", str(config), "--email", "Member3@Example.com", "--email", kept,
               "--email", " BLOCKED@excluded.example ", "--delete-contact"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    counts = json.loads(out)
    assert counts["emails"] == 3 and counts["synced_entries"] == 2 and counts["residue"] == 0
    assert counts["contacts_deleted"] == 1 and counts["contacts_not_found"] == 2
    assert counts["report_lines"] >= 3 and counts["run_records"] >= 2
    assert holding(tmp_path / "state", targets) == {e: [] for e in targets}
    assert simc.contact(kept) is None
    assert not any(t.split("@")[0] in (out + err).lower() for t in targets), "forget printed an email"
    # forget folded the killed run's open plan in first (worker.run.settle): 6 and 7 are recorded as AC has
    # them, so the same snapshot again sends only the two forgotten people, as new
    assert main(["sync", "--config", str(config), "--export", "vip", "--snapshot", str(tmp_path / "r2.jsonl")]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["counts"]["added"], again["counts"]["updated"], again["counts"]["unchanged"]) == (2, 0, 398)
    # the rest of the state is intact: the first snapshot puts 5, 6 and 7 back
    assert main([*sync, str(write_jsonl(tmp_path / "r3.jsonl", people))]) == 0
    event = json.loads(capsys.readouterr().out)
    assert (event["counts"]["added"], event["counts"]["updated"], event["counts"]["unchanged"]) == (0, 3, 397)
