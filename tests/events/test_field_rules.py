"""Each field's rule rejects, with the right class and a reason that names the field.

Why one table: the dead-letter reason is what an operator reads at 3 a.m.; each row pins both that the
rule exists and that its reason says which field and what is wrong.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import Any

import fastjsonschema
import orjson
import pytest

from worker.events.schemas import (
    EVENT_TYPES,
    MAX_EVENT_BYTES,
    MAX_REASON_CHARS,
    REASON_CLASSES,
    InvalidEvent,
    _validators,
    load_validators,
    parse_event,
    validate_event,
)

from .strategies import encode, valid_completion, valid_continuation, valid_refreshed, valid_requested

DROP = object()


def _set(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``event`` with the dotted ``path`` set to ``value`` (or removed, for DROP)."""
    event = copy.deepcopy(event)
    *parents, last = path.split(".")
    target = event
    for key in parents:
        target = target[key]
    if value is DROP:
        del target[last]
    else:
        target[last] = value
    return event


BASES: dict[str, Callable[[], dict[str, Any]]] = {
    "segment.refreshed": lambda: valid_refreshed(profile_count=20, segment_name="VIP"),
    "export.requested": valid_continuation,
    "export.completed": lambda: valid_completion("partial"),
    "export.failed": lambda: valid_completion("failed"),
}

# (event type, field path, value, reason_class, text the reason must contain)
REJECTED: list[tuple[str, str, Any, str, str]] = [
    # envelope
    ("segment.refreshed", "type", DROP, "unknown_type", "no \"type\" field"),
    ("segment.refreshed", "type", "segment.deleted", "unknown_type", "unknown event type 'segment.deleted'"),
    ("segment.refreshed", "type", 7, "unknown_type", "must be a string, got an integer"),
    ("segment.refreshed", "version", DROP, "unsupported_version", "no \"version\" field"),
    ("segment.refreshed", "version", 2, "unsupported_version", "unsupported version 2"),
    ("segment.refreshed", "version", "1", "unsupported_version", "unsupported version '1'"),
    ("segment.refreshed", "version", True, "unsupported_version", "unsupported version true"),
    ("segment.refreshed", "version", 1.0, "unsupported_version", "unsupported version 1.0"),
    ("segment.refreshed", "id", DROP, "schema", "segment.refreshed: id is required"),
    ("segment.refreshed", "id", "", "schema", "id must not be empty"),
    ("segment.refreshed", "id", "x" * 201, "schema", "id must be at most 200 characters"),
    ("segment.refreshed", "id", "a\nb", "schema", "id must not contain control characters"),
    ("segment.refreshed", "id", 42, "schema", "id must be a string, got an integer"),
    ("segment.refreshed", "occurred_at", DROP, "schema", "occurred_at is required"),
    ("segment.refreshed", "occurred_at", "2026-11-28 14:00:00", "schema", "occurred_at must be an RFC 3339"),
    ("segment.refreshed", "occurred_at", "2026-11-28T14:00:00", "schema", "occurred_at must be an RFC 3339"),
    # segment.refreshed
    ("segment.refreshed", "segment", DROP, "schema", "segment is required"),
    ("segment.refreshed", "segment", "vip", "schema", "segment must be an object, got a string"),
    ("segment.refreshed", "segment.id", DROP, "schema", "segment.id is required"),
    ("segment.refreshed", "segment.id", "", "schema", "segment.id must not be empty"),
    ("segment.refreshed", "segment.id", "s" * 201, "schema", "segment.id must be at most 200"),
    ("segment.refreshed", "segment.name", 5, "schema", "segment.name must be a string"),
    ("segment.refreshed", "segment.name", "n" * 501, "schema", "segment.name must be at most 500"),
    ("segment.refreshed", "refresh_id", DROP, "schema", "refresh_id is required"),
    ("segment.refreshed", "refresh_id", "", "schema", "refresh_id must not be empty"),
    ("segment.refreshed", "refresh_id", None, "schema", "refresh_id must be a string, got null"),
    ("segment.refreshed", "snapshot", DROP, "schema", "snapshot is required"),
    ("segment.refreshed", "snapshot", [], "schema", "snapshot must be an object, got an array"),
    ("segment.refreshed", "snapshot.uri", DROP, "schema", "snapshot.uri is required"),
    ("segment.refreshed", "snapshot.uri", "", "schema", "snapshot.uri must not be empty"),
    ("segment.refreshed", "snapshot.uri", "s3://b/" + "k" * 2042, "schema", "snapshot.uri must be at most 2048"),
    ("segment.refreshed", "snapshot.uri", "s3://b/k\r\n", "schema", "snapshot.uri must not contain control"),
    ("segment.refreshed", "snapshot.format", "avro", "schema",
     "segment.refreshed: snapshot.format must be one of jsonl, csv, parquet"),
    ("segment.refreshed", "snapshot.compression", "zip", "schema", "snapshot.compression must be one of none, gzip"),
    ("segment.refreshed", "snapshot.profile_count", -1, "schema", "snapshot.profile_count must be >= 0"),
    ("segment.refreshed", "snapshot.profile_count", 1.5, "schema", "snapshot.profile_count must be an integer"),
    ("segment.refreshed", "snapshot.profile_count", "10", "schema", "must be an integer, got a string"),
    ("segment.refreshed", "snapshot.profile_count", True, "schema", "must be an integer, got a boolean"),
    # export.requested
    ("export.requested", "export", DROP, "schema", "export is required"),
    ("export.requested", "export", "", "schema", "export must not be empty"),
    ("export.requested", "full", "yes", "schema", "full must be a boolean, got a string"),
    ("export.requested", "full", 1, "schema", "full must be a boolean, got an integer"),
    ("export.requested", "dry_run", None, "schema", "dry_run must be a boolean"),
    ("export.requested", "snapshot.format", "xml", "schema", "snapshot.format must be one of jsonl, csv"),
    ("export.requested", "continuation", 0, "schema", "continuation must be >= 1"),
    ("export.requested", "continuation", "1", "schema", "continuation must be an integer"),
    ("export.requested", "run_id", DROP, "schema",
     "run_id is required: a continuation (continuation set) must name its run_id and refresh_id"),
    ("export.requested", "refresh_id", DROP, "schema", "refresh_id is required"),
    ("export.requested", "continuation", DROP, "schema",  # naming a run without being a continuation (review 4)
     "run_id is not allowed here: run_id names the run a continuation continues"),
    ("export.requested", "run_id", "../../etc", "schema", "run_id must be letters, digits"),
    ("export.requested", "run_id", "a/b", "schema", "run_id must be letters, digits"),
    ("export.requested", "run_id", "r" * 201, "schema", "run_id must be at most 200"),
    ("export.requested", "segment.id", DROP, "schema", "segment.id is required"),
    # export.completed
    ("export.completed", "status", "failed", "schema", "status must be one of succeeded, partial, got 'failed'"),
    ("export.completed", "status", DROP, "schema", "status is required"),
    ("export.completed", "run_id", DROP, "schema", "run_id is required"),
    ("export.completed", "connection", "", "schema", "connection must not be empty"),
    ("export.completed", "list_id", 0, "schema", "list_id must be >= 1"),
    ("export.completed", "list_id", "3", "schema", "list_id must be an integer, got a string"),
    ("export.completed", "counts", DROP, "schema", "counts is required"),
    ("export.completed", "counts.added", DROP, "schema", "counts.added is required"),
    ("export.completed", "counts.bonus", 1, "schema", "counts has unknown field 'bonus'"),
    ("export.completed", "counts.failed", -1, "schema", "counts.failed must be >= 0"),
    ("export.completed", "counts.profiles", 2.5, "schema", "counts.profiles must be an integer"),
    ("export.completed", "started_at", "now", "schema", "started_at must be an RFC 3339"),
    ("export.completed", "finished_at", DROP, "schema", "finished_at is required"),
    ("export.completed", "duration_seconds", -0.5, "schema", "duration_seconds must be >= 0"),
    ("export.completed", "duration_seconds", "1s", "schema", "duration_seconds must be a number"),
    ("export.completed", "failures_uri", "", "schema", "failures_uri must not be empty"),
    ("export.completed", "segment", DROP, "schema", "segment is required"),
    # export.failed
    ("export.failed", "error", DROP, "schema", "export.failed: error is required"),
    ("export.failed", "error.code", DROP, "schema", "error.code is required"),
    ("export.failed", "error.code", "has space", "schema", "error.code must be letters, digits"),
    ("export.failed", "error.message", "m" * 4097, "schema", "error.message must be at most 4096"),
    ("export.failed", "error.trace", "...", "schema", "error has unknown field 'trace'"),
    ("export.failed", "status", "partial", "schema", "status must be 'failed', got 'partial'"),
]


@pytest.mark.parametrize(("etype", "path", "value", "reason_class", "text"), REJECTED,
                         ids=[f"{r[0]}:{r[1]}={str(r[2])[:12]!s}" for r in REJECTED])
def test_rule_rejects(etype: str, path: str, value: Any, reason_class: str, text: str) -> None:
    event = _set(BASES[etype](), path, value)
    with pytest.raises(InvalidEvent) as info:
        parse_event(encode(event))
    assert info.value.reason_class == reason_class
    assert text in info.value.reason, info.value.reason
    if reason_class == "schema":
        assert info.value.reason.startswith(f"{etype}: ")
        assert info.value.event_type == etype
    with pytest.raises(InvalidEvent) as again:  # the same verdict for a decoded dict
        validate_event(orjson.loads(encode(event)), allow_extra_fields=True)
    assert again.value.reason == info.value.reason


@pytest.mark.parametrize("etype", EVENT_TYPES)
def test_base_events_are_valid(etype: str) -> None:
    event = BASES[etype]()
    assert parse_event(encode(event)) == event
    validate_event(event)


# ------------------------------------------------------------------------------- accepted variations

@pytest.mark.parametrize("event", [
    valid_refreshed(),
    valid_refreshed(uri="s3://cdp-exports/vip/members.csv.gz"),
    valid_refreshed(uri="file:///data/segments/vip/", event_id="not-a-uuid-but-fine"),
    valid_refreshed(occurred_at="2026-11-28T15:00:00.123456+01:00"),
    _set(valid_refreshed(), "snapshot.compression", DROP),
    _set(valid_refreshed(), "snapshot.profile_count", 0),
    _set(valid_refreshed(), "segment.name", ""),
    valid_requested(),
    valid_requested(full=True, dry_run=True, uri="s3://cdp-exports/vip/"),
    _set(valid_continuation(), "request_id", "6a1d0c55-2b7e-4f8a-9c3d-5e4f3a2b1c0e"),  # a requested run's
    valid_continuation(continuation=42),
    valid_completion("succeeded"),
    valid_completion("partial"),
    valid_completion("failed"),
], ids=lambda e: e["type"])
def test_valid_variations_are_accepted(event: dict[str, Any]) -> None:
    assert parse_event(encode(event)) == event


@pytest.mark.parametrize(("path", "value"), [
    ("producer", "cdp-2"),                                  # unknown top-level field
    ("trace", {"span": "abc", "deep": [1, [2, [3]]]}),
    ("segment.owner", "marketing"),                         # unknown field inside segment (upstream-owned)
    ("snapshot.checksum", "sha256:00"),                     # ... and inside snapshot
])
def test_consumers_tolerate_unknown_fields_outside_counts_and_error(path: str, value: Any) -> None:
    event = _set(valid_refreshed(), path, value)
    assert parse_event(encode(event)) == event
    validate_event(event, allow_extra_fields=True)


def test_published_events_may_not_carry_unknown_top_level_fields() -> None:
    event = valid_completion("succeeded")
    event["hostname"] = "myaccount.api-us1.com"
    with pytest.raises(InvalidEvent) as info:
        validate_event(event)
    assert info.value.reason_class == "schema"
    assert "unknown top-level field 'hostname'" in info.value.reason
    validate_event(event, allow_extra_fields=True)
    assert parse_event(encode(event)) == event  # a consumer still accepts it


# -------------------------------------------------------------------------------- body-level classes

@pytest.mark.parametrize(("body", "reason_class"), [
    (b"", "not_json"),
    (b"{", "not_json"),
    (b"\xff\xfe{}", "not_json"),
    (b"\xef\xbb\xbf{}", "not_json"),
    (b"NaN", "not_json"),
    (b"[" * 5000 + b"]" * 5000, "not_json"),
    (b"[]", "not_an_object"),
    (b'"segment.refreshed"', "not_an_object"),
    (b"null", "not_an_object"),
    (b"{}", "unknown_type"),
    (b'{"type": null, "version": 1}', "unknown_type"),
    (b'{"type": "segment.refreshed"}', "unsupported_version"),
    (b'{"type": "segment.refreshed", "version": 1}', "schema"),
    (b" " * (MAX_EVENT_BYTES + 1), "too_large"),
])
def test_body_classes(body: bytes, reason_class: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(body)
    assert info.value.reason_class == reason_class


def test_size_limit_is_inclusive_and_checked_before_parsing() -> None:
    event = valid_refreshed()
    base = len(encode({**event, "padding": ""}))
    at_limit = {**event, "padding": "p" * (MAX_EVENT_BYTES - base)}
    assert len(encode(at_limit)) == MAX_EVENT_BYTES
    assert parse_event(encode(at_limit)) == at_limit
    with pytest.raises(InvalidEvent) as info:
        parse_event(encode({**at_limit, "padding": at_limit["padding"] + "p"}))
    assert info.value.reason_class == "too_large"
    assert info.value.reason == f"body is {MAX_EVENT_BYTES + 1} bytes, more than the {MAX_EVENT_BYTES} bytes " \
                                f"an event may have"
    with pytest.raises(InvalidEvent, match=r"more than the \d+ bytes"):
        parse_event(b"\xff" * (10 * MAX_EVENT_BYTES))  # not JSON either, but size is checked first


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview, lambda b: b.decode()],
                         ids=["bytes", "bytearray", "memoryview", "str"])
def test_body_may_be_any_bytes_like_or_str(wrap: Callable[[bytes], Any]) -> None:
    event = valid_refreshed()
    assert parse_event(wrap(encode(event))) == event
    with pytest.raises(InvalidEvent) as info:
        parse_event(wrap(b"x" * (MAX_EVENT_BYTES + 1)))
    assert info.value.reason_class == "too_large"


def test_str_body_with_lone_surrogate_is_not_json() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event('{"type": "\ud800"}')
    assert info.value.reason_class == "not_json"


def test_a_decoded_payload_is_a_caller_bug_not_a_bad_message() -> None:
    """kombu decodes JSON bodies for callbacks; parse_event wants message.body, and says so loudly."""
    with pytest.raises(TypeError, match="raw message body"):
        parse_event(valid_refreshed())  # type: ignore[arg-type]


def test_validate_event_rejects_non_objects() -> None:
    with pytest.raises(InvalidEvent) as info:
        validate_event([valid_refreshed()])
    assert info.value.reason_class == "not_an_object"


# -------------------------------------------------------------------------------- bounded reasons

HOSTILE = "Z" * 100_000


@pytest.mark.parametrize(("path", "value"), [
    ("type", HOSTILE),
    ("version", HOSTILE),
    ("id", HOSTILE),
    ("occurred_at", HOSTILE),
    ("segment.id", HOSTILE),
    ("snapshot.uri", HOSTILE),
    ("snapshot.format", HOSTILE),
    ("snapshot.profile_count", HOSTILE),
    ("snapshot", {HOSTILE: HOSTILE}),
])
def test_reasons_never_echo_much_of_a_hostile_refreshed(path: str, value: Any) -> None:
    _assert_bounded(_set(valid_refreshed(), path, value))


@pytest.mark.parametrize(("path", "value"), [
    (f"counts.{HOSTILE}", 1),
    ("error", {"code": "x", "message": "m", HOSTILE: 1}),
    ("error.code", HOSTILE),
    ("status", HOSTILE),
    ("run_id", HOSTILE),
])
def test_reasons_never_echo_much_of_a_hostile_completion(path: str, value: Any) -> None:
    _assert_bounded(_set(valid_completion("failed"), path, value))


def _assert_bounded(event: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(encode(event))
    for exc in (info.value, *_raises(event)):
        assert len(exc.reason) <= MAX_REASON_CHARS
        assert exc.reason.count("Z") <= 200, exc.reason
        assert len(str(exc)) <= MAX_REASON_CHARS
        # no library exception (whose message may quote unbounded input) rides along into tracebacks
        assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)


def _raises(event: dict[str, Any]) -> list[InvalidEvent]:
    try:
        validate_event(event, allow_extra_fields=True)
    except InvalidEvent as exc:
        return [exc]
    raise AssertionError("accepted a hostile event")


def test_reason_classes_are_the_documented_set() -> None:
    assert REASON_CLASSES == ("not_json", "too_large", "not_an_object", "unknown_type", "unsupported_version",
                              "schema")
    with pytest.raises(ValueError, match="unknown reason_class"):
        InvalidEvent("typo", "x")


def test_invalid_event_is_a_value_error_and_pickles() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(encode(_set(valid_refreshed(), "snapshot.format", "avro")))
    exc = info.value
    assert isinstance(exc, ValueError)
    assert exc.path == "snapshot.format"
    copy_ = pickle.loads(pickle.dumps(exc))
    assert (copy_.reason_class, copy_.reason, copy_.event_type, copy_.path) == (
        exc.reason_class, exc.reason, exc.event_type, exc.path)


def test_load_validators_compiles_every_schema_up_front() -> None:
    """Compiled at start, not at the first message: a broken install fails before anything is consumed."""
    _validators.cache_clear()
    load_validators()
    assert _validators.cache_info().currsize == 1  # compiled now, by load_validators itself
    compiled = _validators()
    assert _validators.cache_info().hits >= 1  # the call above reused what load_validators built
    assert sorted(compiled) == sorted(EVENT_TYPES)
    for etype, validator in compiled.items():  # each one is its type's schema, not a placeholder
        good = BASES[etype]()
        assert validator(good) == good
        with pytest.raises(fastjsonschema.JsonSchemaValueException):
            validator({**good, "id": ""})
