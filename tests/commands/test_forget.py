"""Issue 18, must-show 4: `segment-export forget` leaves no file in the state store holding the emails' bytes
(searched raw and in every zlib stream of every file: shards' emails and tags sections included), with
`--delete-contact` the contact is gone from the simulator, and it prints counts, never an email."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

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


def state_holds(state: Path, email: str) -> list[str]:
    """The store's files that hold ``email`` as a whole address (``searchable`` bytes, any case)."""
    pattern = re.compile(rb"(?<![\w.+-])" + re.escape(email.encode()) + rb"(?![\w-]|\.\w)")
    return [str(p.relative_to(state)) for p in state.rglob("*")
            if p.is_file() and pattern.search(searchable(p.read_bytes()))]


def test_forget_matches_whole_addresses_in_any_case_never_a_part_of_another(sim, tmp_path: Path, capsys) -> None:
    """Forgetting ann@ leaves joann@, ann@...au and their failure-report lines alone, and finishes (residue 0)."""
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=20)
    simc.exclude("*@excluded.example")
    target, neighbours = "ann@example.com", ["joann@example.com", "ann@example.com.au"]
    refused, refused_neighbour = "ann@excluded.example", "joann@excluded.example"
    people = [{"EmailAddress": e} for e in [target, *neighbours, refused, refused_neighbour]]
    people += [person(i) for i in range(20)]
    assert main(["sync", "--config", str(config), "--export", "vip", "--snapshot",
                 str(write_jsonl(tmp_path / "r1.jsonl", people))]) == 3  # the excluded two failed
    capsys.readouterr()
    state = tmp_path / "state"
    reports = [f for f in state_holds(state, refused_neighbour) if "failures" in f]
    assert len(reports) == 2  # failures.csv and failures.jsonl

    rc = main(["forget", "--config", str(config), "--email", "ANN@Example.com", "--email", "Ann@Excluded.example"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    counts = json.loads(out)
    assert (counts["synced_entries"], counts["report_lines"], counts["residue"]) == (1, 2, 0), counts
    assert state_holds(state, target) == [] and state_holds(state, refused) == []
    for email in neighbours:
        assert any("/shards/" in f for f in state_holds(state, email)), email  # still synced
    assert [f for f in state_holds(state, refused_neighbour) if "failures" in f] == reports  # its lines kept
    assert main(["sync", "--config", str(config), "--export", "vip", "--snapshot", str(tmp_path / "r1.jsonl")]) == 3
    event = json.loads(capsys.readouterr().out)
    assert (event["counts"]["added"], event["counts"]["unchanged"]) == (1, 22)  # only the forgotten one is new


def test_forget_finishes_in_one_pass_over_a_crashed_commit_s_fresh_generation(sim, tmp_path: Path, capsys) -> None:
    """A commit that died after writing its generation (not swapped in, minutes young) holds the email: forget
    deletes it in the same pass (it fences it off by swapping the manifest itself) and exits 0."""
    from worker.contacts.synced import SyncedState
    from worker.state import open_store
    from worker.syncstate.merge import Changes, write_generation

    url, _ = sim
    config = write_config(tmp_path, url, rate_scale=20)
    assert main(["sync", "--config", str(config), "--export", "vip", "--snapshot",
                 str(write_jsonl(tmp_path / "r1.jsonl", [person(i) for i in range(30)]))]) == 0
    capsys.readouterr()
    store = open_store((tmp_path / "state").as_uri())
    synced, _ = SyncedState.load(store, "exports/vip/synced")
    with Changes(2) as changes:  # what a crashed run's commit leaves: its generation, never swapped in
        changes.set("newcomer@example.com", 7, "")
        debris = write_generation(store, "exports/vip/", synced.source, changes, "crashed-run", None).manifest
    target = "member4@example.com"
    assert any(debris.generation in f for f in state_holds(tmp_path / "state", target))

    rc = main(["forget", "--config", str(config), "--email", target])
    out, err = capsys.readouterr()
    assert rc == 0, err
    counts = json.loads(out)
    assert counts["residue"] == 0 and counts["orphan_shards"] == len(debris.shard_keys()), counts
    assert state_holds(tmp_path / "state", target) == []
    assert state_holds(tmp_path / "state", "newcomer@example.com") == []  # the debris is gone whole
    assert main(["sync", "--config", str(config), "--export", "vip", "--snapshot", str(tmp_path / "r1.jsonl")]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["added"] == 1  # the state is intact but for the one


def test_forget_on_an_owned_list_unsubscribes_the_person_and_verify_repair_never_takes_them_back(
        sim, tmp_path: Path, capsys) -> None:
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=20, export="owns_list = true")
    people = [person(i) for i in range(50)]
    assert main(["sync", "--config", str(config), "--export", "vip", "--snapshot",
                 str(write_jsonl(tmp_path / "r1.jsonl", people))]) == 0
    capsys.readouterr()
    target = "member7@example.com"
    rc = main(["forget", "--config", str(config), "--email", target])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert simc.members(3)[target]["status"] == "unsubscribed"  # no longer a subscriber the export does not know
    assert json.loads(out)["list_unsubscribed"] == 1

    rc = main(["verify", "--config", str(config), "--export", "vip", "--repair"])
    table = capsys.readouterr().out
    assert rc == 0 and re.search(r"subscribed, never sent by this export\s+0 ", table), table
    assert state_holds(tmp_path / "state", target) == []  # nothing wrote the email back
    assert main(["sync", "--config", str(config), "--export", "vip", "--snapshot",
                 str(write_jsonl(tmp_path / "r2.jsonl", [p for p in people if p["EmailAddress"] != target]))]) == 0
    event = json.loads(capsys.readouterr().out)
    assert event["counts"]["removed"] == 0 and event["drift"]["unexpected"] == 0


def test_a_forget_while_verify_reads_voids_verify_s_findings(sim, tmp_path: Path, capsys) -> None:
    """A stranger on an owned list is read by verify as unexpected; forget runs before verify ends: verify keeps
    no report and repairs nothing, so the forgotten email is not written back."""
    url, simc = sim
    stranger = "stranger@example.org"
    simc.add_contact(stranger, lists={3: "subscribed"})  # the lowest id: on verify's first page
    config = write_config(tmp_path, url, rate_scale=20, export="owns_list = true")
    assert main(["sync", "--config", str(config), "--export", "vip", "--snapshot",
                 str(write_jsonl(tmp_path / "r1.jsonl", [person(i) for i in range(5_000)]))]) == 0
    capsys.readouterr()
    slow = tmp_path / "slow.toml"
    slow.write_text(re.sub(r"requests_per_second = \S+", "requests_per_second = 3", config.read_text()))
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-m", "worker", "verify", "--config", str(slow), "--export", "vip",
                             "--repair"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def read_the_stranger() -> bool:
            return any(p.name == "checkpoint" and stranger.encode() in p.read_bytes() for p in state.rglob("*"))

        wait_for(read_the_stranger, 60, "verify to read the stranger as unexpected (checkpointed)",
                 check=lambda: None if proc.poll() is None else pytest.fail("verify ended early"))
        rc = main(["forget", "--config", str(config), "--email", stranger])
        assert rc == 0, capsys.readouterr().err
        assert proc.poll() is None, "verify ended before the forget: the case is not met"
        out, err = proc.communicate(timeout=180)
        assert not out.strip()  # no table: the findings were void
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == 1 and b"a forget ran while verify was reading the list" in err, err
    assert state_holds(state, stranger) == []
