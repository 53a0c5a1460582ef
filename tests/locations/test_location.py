"""``locate`` and ``Prefixes``: what a location means, and which ones an event may name (issue 19).

Examples first (each of the issue's reproductions is one), then the properties, fuzzed with hypothesis
over a real folder tree holding links that point out of the allowed folder:

- no accepted location resolves outside its prefix, whatever the encoding (local paths and S3 keys);
- the decision depends only on what the URI decodes to (any percent-encoding of the same text gives
  the same location), and decoding happens exactly once (a double-encoded URI names the literal
  ``%xx`` text);
- ``locate(location.uri) == location`` (canonical URIs mean what they came from).
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fuzzing import fuzz
from worker.locations import Location, LocationError, OutsidePrefixes, Prefixes, locate, prefix_note

# ------------------------------------------------------------------------------------------ examples

ALLOWED = Prefixes.parse(["file:///data/segments", "s3://cdp-exports"])


@pytest.mark.parametrize("uri", [
    "file:///data/segments/../../outside/secret.jsonl",          # reproduced: synced 20 members
    "file:///data/segments/%2e%2e/%2e%2e/outside/secret.jsonl",  # reproduced: synced 20 members
    "file:///data/segments/%2F..%2F..%2Fetc/passwd",             # reproduced: /etc/passwd accepted
    "file:///data/segments/%2E%2E/segments-other/x.csv",
    "file://./snap/../../x.csv",                                 # a relative URI climbing out
    "file:///data/segments-other/x.csv",                         # defect 4: a sibling of the prefix
    "s3://cdp-exports-evil/x.csv",                               # defect 4: a sibling bucket
    "s3://cdp-exports%2Devil/x.csv",
    "/data/segments-other/x.csv",
    "file://localhost/data/segmentsx/x.csv",
])
def test_the_reproduced_escapes_are_refused(uri: str) -> None:
    with pytest.raises(OutsidePrefixes, match="is outside the snapshot prefixes this worker reads") as caught:
        ALLOWED.admit(uri)
    # the message goes to the publisher's DLQ reason: no prefix in it; the detail (for the log) names them
    assert "cdp-exports/," not in str(caught.value) and "snapshot_prefixes" not in str(caught.value)
    assert "[worker] snapshot_prefixes: file:///data/segments/, s3://cdp-exports/" in caught.value.detail


@pytest.mark.parametrize(("uri", "meant"), [
    ("file:///data/segments/vip/2026-11-28/", "file:///data/segments/vip/2026-11-28/"),
    ("file:///data/segments/vip/../vip/x.csv", "file:///data/segments/vip/x.csv"),
    ("file:///data/segments//vip/./x.csv", "file:///data/segments/vip/x.csv"),
    ("file://localhost/data/segments/a%20b.csv", "file:///data/segments/a%20b.csv"),
    ("/data/segments/vip/x.jsonl", "file:///data/segments/vip/x.jsonl"),
    ("s3://cdp-exports/vip/a/../b//x.csv", "s3://cdp-exports/vip/b/x.csv"),
    ("s3://cdp-exports", "s3://cdp-exports/"),
    ("S3://cdp-exports/a%23b%3F.csv", "s3://cdp-exports/a%23b%3F.csv"),
    ("s3://cdp-exports/a#b?.csv", "s3://cdp-exports/a%23b%3F.csv"),  # raw in S3 keys, as before
])
def test_allowed_locations_are_normalised(uri: str, meant: str) -> None:
    assert ALLOWED.admit(uri).uri == meant


@pytest.mark.parametrize(("uri", "match"), [
    ("", "empty"),
    ("ftp://host/x.csv", "unsupported scheme 'ftp'"),
    ("file://otherhost/x.csv", "names a remote host"),
    ("file://", "names no file"),
    ("file:///x.csv?.jsonl", "would start a query"),
    ("file:///data/%00x", "NUL"),
    ("file:///../etc/passwd", "climbs above its root"),
    ("s3:///key", "has no bucket"),
    ("s3://a%2Fb/key", "is not an S3 bucket name"),
    ("s3://b/%ff", "not UTF-8"),
    ("s3://b/x\n", "control character"),
    (" s3://b/x", "surrounding spaces"),
])
def test_what_names_nothing_is_refused_with_the_reason(uri: str, match: str) -> None:
    with pytest.raises(LocationError, match=match):
        locate(uri)


def test_decoding_happens_once() -> None:
    assert locate("file:///data/%252e%252e/x").segments == ("data", "%2e%2e", "x")
    assert locate("s3://b/%252F").segments == ("%2F",)
    assert locate("/data/%2e%2e/x").segments == ("data", "%2e%2e", "x")  # a plain path is not a URI


def test_whole_segments_and_buckets() -> None:
    prefix = locate("s3://b/team").as_folder()
    assert locate("s3://b/team/x").is_under(prefix) and locate("s3://b/team").is_under(prefix)
    assert not locate("s3://b/teamwork/x").is_under(prefix)
    assert not locate("s3://bb/team/x").is_under(prefix) and not locate("file:///team/x").is_under(prefix)


def test_a_prefix_without_a_trailing_slash_is_a_folder_and_config_check_says_so() -> None:
    assert prefix_note("s3://cdp-exports") == ("snapshot_prefixes: 's3://cdp-exports' has no trailing slash; it "
                                               "is taken as the folder s3://cdp-exports/ (locations inside it, "
                                               "not s3://cdp-exports-other/)")
    assert "taken as the folder file:///data/segments/ (locations inside it, not file:///data/segments-other)" in (
        prefix_note("file:///data/segments") or "")
    assert prefix_note("s3://cdp-exports/") is None and prefix_note("file:///data/segments/") is None
    assert Prefixes.parse(None).admit("/anything") == locate("/anything")


def test_links_are_resolved_before_the_comparison(tmp_path: Path) -> None:
    """Defect 5 at the event's level: a link under the prefix names a place outside it."""
    (tmp_path / "allowed").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "allowed" / "evil").symlink_to(tmp_path / "outside", target_is_directory=True)
    prefixes = Prefixes.parse([str(tmp_path / "allowed")])
    with pytest.raises(OutsidePrefixes) as caught:
        prefixes.admit((tmp_path / "allowed" / "evil" / "x.csv").as_uri())
    assert re.match(r"it means 'file://.*/outside/x.csv'", caught.value.detail)
    assert "outside/x.csv" not in str(caught.value)  # where links lead is for the log, not the publisher
    # and a prefix that is itself a link (a Kubernetes volume, say) admits what lies in its target
    (tmp_path / "mount").symlink_to(tmp_path / "allowed", target_is_directory=True)
    assert Prefixes.parse([str(tmp_path / "mount")]).admit(str(tmp_path / "allowed" / "x.csv"))


# ------------------------------------------------------------------------------------------ properties

_TOKENS = ["a", "b", "x.csv", "evil", "evil.csv", "good", "loop", "..", ".", "", "allowed", "allowed-other",
           "outside", "secret.csv", "%2e%2e", "%2E%2e", ".%2e", "%2F", "%2f..%2f", "%252e%252e", "..%2F..",
           "%00", "%2e", "a%2Fx.csv", "%", "%zz", "~", "é", "%C3%A9", "%ff", " ", "a b", "?", "#", "%3F", "%23"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """base/{allowed, allowed-other, outside}, with links in allowed that lead out of it (and one in it)."""
    base = tmp_path_factory.mktemp("locations").resolve()
    for d in ("allowed/a", "allowed/b", "allowed-other", "outside"):
        (base / d).mkdir(parents=True)
    for f in ("allowed/a/x.csv", "allowed-other/x.csv", "outside/secret.csv"):
        (base / f).write_text("email\n")
    (base / "allowed" / "evil").symlink_to(base / "outside", target_is_directory=True)
    (base / "allowed" / "evil.csv").symlink_to(base / "outside" / "secret.csv")
    (base / "allowed" / "good").symlink_to(base / "allowed" / "a", target_is_directory=True)
    (base / "allowed" / "loop").symlink_to(base / "allowed" / "loop")
    (base / "allowed" / "a" / "up").symlink_to("../..", target_is_directory=True)
    yield base


def _encode(text: str, draw: st.DrawFn, always: str = "") -> str:
    """``text`` with a random choice of its characters percent-encoded (``always`` ones always)."""
    out = []
    for ch in text:
        if ch in always or (ch not in "/" and draw(st.integers(0, 3)) == 0):
            hexed = "".join(f"%{b:02X}" if draw(st.booleans()) else f"%{b:02x}" for b in ch.encode())
            out.append(hexed)
        else:
            out.append(ch)
    return "".join(out)


@st.composite
def _local_uris(draw: st.DrawFn, base: Path) -> str:
    tokens = draw(st.lists(st.sampled_from(_TOKENS) | st.text(string.ascii_letters + ".%/", max_size=4),
                           max_size=8))
    tail = "/".join(tokens)
    start = draw(st.sampled_from(["abs", "allowed", "relative", "plain"]))
    if start == "allowed":
        path = f"{base}/allowed/{tail}"
    elif start == "abs":
        path = f"{base}/{tail}"
    else:
        path = f"{os.path.relpath(base, os.getcwd())}/{tail}"
    if start == "plain":
        return path
    path = _encode(path, draw) if draw(st.booleans()) else path
    return "file://./" + path if start == "relative" else "file://" + ("localhost" if draw(st.booleans()) else "") \
        + path


@pytest.mark.fuzz
@fuzz(300)
@given(data=st.data())
def test_no_accepted_local_location_resolves_outside_its_prefix(tree: Path, data: st.DataObject) -> None:
    allowed_real = os.path.realpath(tree / "allowed")
    for written in (str(tree / "allowed"), (tree / "allowed").as_uri() + "/"):
        prefixes = Prefixes.parse([written])
        uri = data.draw(_local_uris(tree))
        try:
            location = prefixes.admit(uri)
        except LocationError:
            event("refused")
            continue
        event("accepted")
        real = os.path.realpath(location.path)
        assert real == location.path, f"{uri!r} -> {location.path} still holds a link"
        assert os.path.commonpath([real, allowed_real]) == allowed_real, f"{uri!r} escaped to {real}"
        assert locate(location.uri) == location


_NAME = st.text(st.characters(codec="utf-8", exclude_characters="/\x00", exclude_categories=["Cs", "Cc"]),
                min_size=1, max_size=6).filter(lambda s: s.strip() == s)


@pytest.mark.fuzz
@fuzz(300)
@given(data=st.data(), names=st.lists(st.sampled_from(["..", ".", "", "seg", "%", "a b", "?#"]) | _NAME,
                                     max_size=6))
def test_the_decision_depends_only_on_the_decoded_text_and_decoding_happens_once(
        tree: Path, data: st.DataObject, names: list[str]) -> None:
    prefixes = Prefixes.parse([str(tree / "allowed")])
    text = f"{tree}/allowed/" + "/".join(names)
    must = "%?# \t"  # what a URI cannot carry raw
    one, two = _encode(text, data.draw, must), _encode(text, data.draw, must)
    outcomes = []
    for uri in ("file://" + one, "file://" + two):
        try:
            outcomes.append(prefixes.admit(uri))
        except LocationError as exc:
            outcomes.append(type(exc))
    assert outcomes[0] == outcomes[1], (one, two)
    double = "file://" + _encode(one, data.draw, "%")  # every '%' of ``one`` encoded again
    try:
        once: Location | type = locate(one)  # ``one`` read as a plain path: its '%xx' literal
    except LocationError as exc:
        once = type(exc)
    try:
        assert locate(double) == once
    except LocationError as exc:
        assert type(exc) is once


_BUCKETS = ["cdp-exports", "cdp-exports-evil", "cdp-export", "cdp-exports%2Fteam-a", "cdp%2Dexports",
            "CDP-exports", "cdp-exports.", "other", "%63dp-exports", "cdp-exports%00", ".."]
_KEY_TOKENS = ["team-a", "team-ab", "team-b", "x.csv", "..", ".", "", "%2e%2e", "%2F", "%252e", "..%2F", "a b",
               "%", "?", "#", "é", "%ff", "~", "team-a%2F..%2F..%2Fteam-b"]


@pytest.mark.fuzz
@fuzz(300)
@given(bucket=st.just("cdp-exports") | st.sampled_from(_BUCKETS),
       tokens=st.lists(st.sampled_from(_KEY_TOKENS), max_size=8) | st.lists(
           st.sampled_from(_KEY_TOKENS), max_size=6).map(lambda t: ["team-a", *t]),
       scheme=st.sampled_from(["s3", "S3"]), data=st.data())
def test_no_accepted_s3_location_is_outside_its_prefix(bucket: str, tokens: list[str], scheme: str,
                                                       data: st.DataObject) -> None:
    prefixes = Prefixes.parse(["s3://cdp-exports/team-a"])
    key = "/".join(tokens)
    uri = f"{scheme}://{bucket}/{_encode(key, data.draw) if data.draw(st.booleans()) else key}"
    try:
        location = prefixes.admit(uri)
    except LocationError:
        event("refused")
        return
    event("accepted")
    segments = location.key.split("/")
    assert location.root == "cdp-exports", uri
    assert segments[:1] == ["team-a"], f"{uri!r} -> key {location.key!r}"
    assert not any(s in ("..", ".") for s in segments) and "" not in segments[:-1], location.key
    assert locate(location.uri) == location


@pytest.mark.parametrize("uri", [
    "s3://AKIAEXAMPLE:hunter2@cdp-exports/x.csv",
    "file://user:hunter2@otherhost/data/x.csv",
    "file://user:hunter2@localhost/data/x.csv",
    "ftp://user:hunter2@host/x.csv",
    "file:///data/segments-other/https://user:hunter2@host/x.csv",
    # third review: a password holding '/' (every other AWS secret key) or '@'
    "s3://AKIAEXAMPLE:wJal/hunter2/bPx@cdp-exports/x.csv",
    "s3://AKIAEXAMPLE:wJal%2Fhunter2@cdp-exports/x.csv",
    "az://user:wJal/hunter2@container/x.csv",
    "abfss://user:wJal/hunter2@container@acct.dfs.core.windows.net/x.csv",
    "file:///data/segments-other/https://user:p@hunter2/x@host/x.csv",
])
def test_credentials_in_a_location_never_reach_a_message(uri: str) -> None:
    """Issue 19 review, defect 7: ``user:pass@`` is masked in every error, whatever the error."""
    with pytest.raises(LocationError) as caught:
        ALLOWED.admit(uri)
    text = str(caught.value) + getattr(caught.value, "detail", "")
    assert "hunter2" not in text and "***@" in text, text


# ------------------------------------------------------------------------------------------ Azure (issue 16)
@pytest.mark.parametrize(("uri", "root", "segments", "canonical"), [
    ("az://segments/vip/model.json", "segments", ("vip", "model.json"), "az://segments/vip/model.json"),
    ("az://segments/vip/x/../%6dodel.json", "segments", ("vip", "model.json"), "az://segments/vip/model.json"),
    ("abfss://segments@acct1.dfs.core.windows.net/vip/model.json", "segments@acct1", ("vip", "model.json"),
     "abfss://segments@acct1.dfs.core.windows.net/vip/model.json"),
    ("ABFSS://segments@ACCT1.blob.core.windows.net/vip/", "segments@acct1", ("vip",),
     "abfss://segments@acct1.dfs.core.windows.net/vip/"),
])
def test_azure_locations(uri: str, root: str, segments: tuple[str, ...], canonical: str) -> None:
    location = locate(uri)
    assert (location.kind, location.root, location.segments, location.uri) == ("az", root, segments, canonical)
    assert locate(location.uri) == location


def test_azure_prefixes_compare_container_and_whole_segments() -> None:
    allowed = Prefixes.parse(["az://segments/vip"])
    assert allowed.admit("az://segments/vip/2026/model.json").uri == "az://segments/vip/2026/model.json"
    for outside in ("az://segments/vip-other/x.csv", "az://segments-evil/vip/x.csv", "az://segments/vip/../x.csv",
                    "abfss://segments@acct1.dfs.core.windows.net/vip/x.csv", "s3://segments/vip/x.csv"):
        with pytest.raises(OutsidePrefixes):
            allowed.admit(outside)


@pytest.mark.parametrize(("uri", "match"), [
    ("az://Segments/x", "is not an Azure container name"),
    ("az://a/x", "is not an Azure container name"),
    ("az://seg--ments/x", "is not an Azure container name"),
    ("abfss://segments/x", r"is not abfss://container@account.dfs.core.windows.net/path"),
    ("abfss://segments@evil.example.com/x", r"is not abfss://container@account"),
    ("az://segments/../../x", "climbs above its root"),
])
def test_azure_locations_that_name_nothing_are_refused(uri: str, match: str) -> None:
    with pytest.raises(LocationError, match=match):
        locate(uri)
