"""Triggers: the segment, snapshot, refresh id and time an announced object means."""

from __future__ import annotations

import pytest

from worker.events.notifications import ObjectNote
from worker.locations import LocationError, locate
from worker.service.triggers import Triggers, refresh_id_for, snapshot_of
from worker.settings import Segment


def note(key: str, token: str = "sequencer:01", bucket: str = "cdp-exports") -> ObjectNote:
    return ObjectNote(bucket, key, "created", "2026-11-28T14:05:00Z", token, "s3")


TRIGGERS = Triggers({
    "vip": Segment(name="vip", triggers=("s3://cdp-exports/vip/*/_SUCCESS", "s3://cdp-exports/vip/*/manifest")),
    "all": Segment(name="all", triggers=("s3://cdp-exports/**/_SUCCESS",)),
    "one": Segment(name="one", triggers=("s3://cdp-exports/single/*.csv.gz",)),
})


def test_a_success_marker_announces_its_folder_for_every_matching_segment() -> None:
    found = TRIGGERS.refreshes(note("vip/dt=2026-11-28/_SUCCESS"))
    assert [r.segment for r in found] == ["vip", "all"]
    assert {r.snapshot_uri for r in found} == {"s3://cdp-exports/vip/dt%3D2026-11-28/"}
    assert {r.occurred_at for r in found} == {"2026-11-28T14:05:00Z"}
    assert len({r.refresh_id for r in found}) == 1


def test_a_manifest_or_a_single_file_is_the_snapshot_itself() -> None:
    (m,) = TRIGGERS.refreshes(note("vip/2026/manifest"))
    assert m.snapshot_uri == "s3://cdp-exports/vip/2026/manifest"
    (f,) = TRIGGERS.refreshes(note("single/members 1.csv.gz"))
    assert f.snapshot_uri == "s3://cdp-exports/single/members%201.csv.gz"


def test_unmatched_objects_start_nothing() -> None:
    assert TRIGGERS.refreshes(note("vip/dt=1/part-0001.csv")) == []
    assert TRIGGERS.refreshes(note("vip/_SUCCESS", bucket="other-bucket")) == []


def test_refresh_id_is_the_same_for_the_same_write_and_differs_for_another() -> None:
    a = TRIGGERS.refreshes(note("vip/d/_SUCCESS", "sequencer:01"))[0].refresh_id
    again = TRIGGERS.refreshes(note("vip/d/_SUCCESS", "sequencer:01"))[0].refresh_id
    rewritten = TRIGGERS.refreshes(note("vip/d/_SUCCESS", "sequencer:02"))[0].refresh_id
    elsewhere = TRIGGERS.refreshes(note("vip/e/_SUCCESS", "sequencer:01"))[0].refresh_id
    assert a == again and len({a, rewritten, elsewhere}) == 3
    assert a.startswith("object-") and len(a) <= 200
    # the same object however its key was spelled in the notification
    assert refresh_id_for(locate("s3://cdp-exports/vip/d/_SUCCESS"), "t") == \
        refresh_id_for(locate("s3://cdp-exports/vip/./x/../d/_SUCCESS"), "t")


def test_snapshot_of_a_marker_at_the_top_of_a_bucket() -> None:
    assert snapshot_of(locate("s3://cdp-exports/_SUCCESS")) == "s3://cdp-exports/"


def test_a_key_that_is_not_literal_is_refused_never_read_as_another_folder() -> None:
    """S3 keys are literal: 'vip//two/_SUCCESS' is not 'vip/two/_SUCCESS'; normalising it would read the
    parts of another folder (an older refresh, another segment's data)."""
    for key in ("vip//two/_SUCCESS", "vip/./two/_SUCCESS", "vip/x/../two/_SUCCESS", "vip/two/_SUCCESS/"):
        with pytest.raises(LocationError, match="keys are literal") as info:
            TRIGGERS.refreshes(note(key))
        assert "without '//', '/./' or '/../'" in str(info.value)
    assert TRIGGERS.refreshes(note("vip/two/_SUCCESS"))  # the literal key itself still starts a run


def azure_note(path: str, account: str = "devstoreaccount1") -> ObjectNote:
    return ObjectNote(f"insights@{account}", path, "created", "2026-11-28T14:05:00Z", "sequencer:0A",
                      "cloudevent", "az")


def test_azure_blobs_start_runs_in_the_form_of_the_trigger_that_matched(monkeypatch: pytest.MonkeyPatch) -> None:
    """az:// is the worker's own account (here Azurite's devstoreaccount1, from the connection string the
    worker's Azure client uses), abfss:// names its account; the snapshot is written like the trigger."""
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "DefaultEndpointsProtocol=http;AccountName="
                       "devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;")
    triggers = Triggers({
        "ci": Segment(name="ci", triggers=("az://insights/CustomerInsights_*/vip/model.json",)),
        "named": Segment(name="named", triggers=(
            "abfss://insights@other.dfs.core.windows.net/CustomerInsights_*/vip/model.json",)),
    })
    (r,) = triggers.refreshes(azure_note("CustomerInsights_7/vip/model.json"))
    assert (r.segment, r.snapshot_uri) == ("ci", "az://insights/CustomerInsights_7/vip/model.json")
    (n,) = triggers.refreshes(azure_note("CustomerInsights_7/vip/model.json", "other"))
    assert (n.segment, n.snapshot_uri) == (
        "named", "abfss://insights@other.dfs.core.windows.net/CustomerInsights_7/vip/model.json")
    assert n.refresh_id != r.refresh_id  # another account's blob is another object
    assert triggers.refreshes(azure_note("CustomerInsights_7/x/model.json")) == []
    assert triggers.refreshes(azure_note("CustomerInsights_7/vip/model.json", "third")) == []
