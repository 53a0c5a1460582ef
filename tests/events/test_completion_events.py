"""Completion events as worker.events.envelopes.completion_event builds them satisfy their schemas.

Why: downstream consumers validate what we publish against these same files; a field the engine adds or
renames must fail here first.
"""

from __future__ import annotations

from typing import Any

import pytest

from worker.events.envelopes import COUNT_KEYS, completion_event, now_iso
from worker.events.schemas import InvalidEvent, parse_event, validate_event

from .strategies import encode

COMMON: dict[str, Any] = {
    "run_id": "sync-3f2a9c0b1d4e5f607182", "export": "vip-newsletter", "segment": "vip-customers",
    "refresh_id": "manual-3f2a9c0b1d4e5f607182", "connection": "marketing", "list_id": 3,
}


def _event(status: str, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {**COMMON, "status": status, "counts": {}, "started_at": now_iso(),
                            "finished_at": now_iso(), "duration_seconds": 0.0}
    args.update(kw)
    return completion_event(**args)


def test_succeeded() -> None:
    counts = dict.fromkeys(COUNT_KEYS, 0) | {"profiles": 10, "added": 10}
    event = _event("succeeded", counts=counts, duration_seconds=12.34567)
    assert event["type"] == "export.completed"
    validate_event(event)
    assert parse_event(encode(event)) == event


def test_partial_with_failures_uri() -> None:
    event = _event("partial", counts={"profiles": 5, "added": 3, "failed": 2},
                   failures_uri="file:///srv/state/exports/vip-newsletter/runs/sync-3f2a/failures.csv")
    assert event["type"] == "export.completed"
    validate_event(event)


@pytest.mark.parametrize("error", [
    {"code": "snapshot_unreadable", "message": "s3://cdp-exports/vip/: no such key"},
    {"code": "activecampaign_auth", "message": ""},  # str(exc) of a bare exception is empty
    {"code": "state_store", "message": "m" * 4096},
])
def test_failed_with_error(error: dict[str, str]) -> None:
    event = _event("failed", error=error)
    assert event["type"] == "export.failed"
    assert event["counts"] == dict.fromkeys(COUNT_KEYS, 0)
    validate_event(event)
    assert parse_event(encode(event)) == event


def test_failed_without_error_is_rejected() -> None:
    with pytest.raises(InvalidEvent, match=r"export\.failed: error is required"):
        validate_event(_event("failed"))


def test_unknown_status_is_rejected() -> None:
    with pytest.raises(InvalidEvent, match="status must be one of succeeded, partial"):
        validate_event(_event("done"))


def test_error_message_over_4096_characters_must_be_truncated_by_the_producer() -> None:
    """The engine puts str(exc) in the message; an unbounded one would make the event invalid."""
    with pytest.raises(InvalidEvent, match=r"error\.message must be at most 4096"):
        validate_event(_event("failed", error={"code": "state_store", "message": "m" * 4097}))


def test_a_run_id_that_is_not_one_path_segment_is_rejected() -> None:
    with pytest.raises(InvalidEvent, match="run_id must be letters, digits"):
        validate_event(_event("succeeded", run_id="vip-newsletter/2026-11-28"))


def test_attempt_is_left_out_unless_given() -> None:
    """A first attempt's event looks exactly as before the field existed (consumers see nothing new)."""
    assert "attempt" not in _event("succeeded")


@pytest.mark.parametrize("status", ["succeeded", "partial", "failed"])
def test_attempt_of_a_retried_run(status: str) -> None:
    error = {"code": "activecampaign_server_error", "message": "503 after 5 tries"} if status == "failed" else None
    event = _event(status, attempt=3, error=error)
    assert event["attempt"] == 3
    validate_event(event)
    assert parse_event(encode(event)) == event


def test_attempt_below_one_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="attempt must be >= 1"):
        _event("succeeded", attempt=0)
    with pytest.raises(InvalidEvent, match="attempt must be >= 1, got 0"):
        validate_event({**_event("succeeded"), "attempt": 0})


@pytest.mark.parametrize("code", ["removal_guard", "activecampaign_auth", "lease_lost"])
def test_the_new_error_codes(code: str) -> None:
    validate_event(_event("failed", error={"code": code, "message": "nothing was sent"}))
