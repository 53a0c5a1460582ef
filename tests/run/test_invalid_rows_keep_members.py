"""A row left out for a bad value keeps its member on the list (issue 19 review, defect 3).

``segment-export sync`` against the simulator over real HTTP, with real CSV files: the second refresh
has a member whose email is fine but whose name is too long (a value ActiveCampaign would truncate) and
another whose custom-field-free row has a nested value. Before the fix both were taken for leavers and
unsubscribed, which bulk import never undoes once the value is fixed.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.run.conftest import subscribed, write_config
from worker.cli import main


def _sync(capsys, config: Path, snapshot: Path) -> tuple[int, dict]:
    rc = main(["sync", "--config", str(config), "--export", "vip", "--snapshot", str(snapshot)])
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else {}


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("EmailAddress,FirstName,LastName,Phone\n" + "".join(f"{e},{n},L,1\n" for e, n in rows))
    return path


def test_a_row_with_a_valid_email_and_a_bad_value_does_not_unsubscribe_that_member(tmp_path, capsys, sim):
    url, simc = sim
    config = write_config(tmp_path, url)
    people = [f"m{i}@example.com" for i in range(20)]
    rc, event = _sync(capsys, config, _csv(tmp_path / "r1.csv", [(e, "Ann") for e in people]))
    assert rc == 0, event
    assert set(subscribed(simc)) == set(people)

    rows = [(e, "Ann") for e in people]
    rows[3] = (" M3@Example.com ", "x" * 300)  # the email is fine (once trimmed); the name is too long
    rc, event = _sync(capsys, config, _csv(tmp_path / "r2.csv", rows))
    assert rc == 0, event  # invalid rows are counted, they do not fail the run
    counts = event["counts"]
    assert (counts["invalid"], counts["removed"]) == (1, 0), counts
    assert set(subscribed(simc)) == set(people), "a member on an invalid row was unsubscribed"

    # the value is fixed upstream: the next run sends that member again and the list is exact
    rc, event = _sync(capsys, config, _csv(tmp_path / "r3.csv", [(e, "Ann") for e in people]))
    assert rc == 0, event
    assert event["counts"]["removed"] == 0 and set(subscribed(simc)) == set(people)
