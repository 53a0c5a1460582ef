"""Property tests: no body makes parse_event raise anything but InvalidEvent, and the class is right.

Why: the worker dead-letters on InvalidEvent and treats any other exception as its own bug (retry, then
crash-loop). A hostile or broken producer must only ever produce the former.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.events.schemas import (
    EVENT_TYPES,
    MAX_REASON_CHARS,
    REASON_CLASSES,
    InvalidEvent,
    parse_event,
    validate_event,
)

from .strategies import (
    JSON_VALUES,
    encode,
    malformed_messages,
    malformed_messages_with_class,
    mutated_events,
    sample_malformed,
    valid_events,
)


def _outcome(body: bytes) -> InvalidEvent | dict[str, Any]:
    """parse_event's result, or its InvalidEvent; any other exception fails the test."""
    try:
        return parse_event(body)
    except InvalidEvent as exc:
        assert exc.reason_class in REASON_CLASSES
        assert 0 < len(exc.reason) <= MAX_REASON_CHARS
        assert exc.event_type in (None, *EVENT_TYPES)
        return exc


def _assert_classified(body: bytes) -> None:
    """``body`` is rejected with the class its first defect calls for, or accepted as exactly what it holds.

    The oracle stops where the schemas begin: a body that is not JSON is ``not_json``, JSON that is not an
    object is ``not_an_object``; an object is either rejected by the envelope/schema checks or accepted,
    and then it is the decoded object itself and passes the consumer's rules again.
    """
    result = _outcome(body)
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        assert isinstance(result, InvalidEvent), f"accepted a body that is not JSON: {body[:100]!r}"
        assert result.reason_class == "not_json", result.reason
        return
    if not isinstance(decoded, dict):
        assert isinstance(result, InvalidEvent), f"accepted a non-object: {body[:100]!r}"
        assert result.reason_class == "not_an_object", result.reason
    elif isinstance(result, InvalidEvent):
        assert result.reason_class in ("unknown_type", "unsupported_version", "schema"), result.reason
    else:
        assert result == decoded
        validate_event(result, allow_extra_fields=True)


@given(st.binary(max_size=4096))
def test_arbitrary_bytes_raise_only_invalid_event(body: bytes) -> None:
    _assert_classified(body)


@given(JSON_VALUES)
def test_arbitrary_json_raises_only_invalid_event(value: Any) -> None:
    _assert_classified(orjson.dumps(value))


# Objects that pass the type/version gate, so the schema validators see arbitrary field values.
_GATED = st.builds(
    lambda etype, fields: {**fields, "type": etype, "version": 1},
    st.sampled_from(EVENT_TYPES),
    st.dictionaries(st.sampled_from(["id", "occurred_at", "segment", "refresh_id", "snapshot", "export", "full",
                                     "run_id", "counts", "status", "error", "list_id", "continuation", "other"]),
                    JSON_VALUES, max_size=8),
)


@given(_GATED)
def test_arbitrary_fields_of_a_known_type_raise_only_invalid_event(event: dict[str, Any]) -> None:
    result = _outcome(encode(event))
    if isinstance(result, InvalidEvent):
        assert result.reason_class == "schema"
        assert result.event_type == event["type"]
    else:  # accepted: the fields happened to satisfy the schema, and nothing was changed on the way
        assert result == event
        validate_event(result, allow_extra_fields=True)


@given(valid_events())
def test_valid_events_round_trip(event: dict[str, Any]) -> None:
    assert parse_event(encode(event)) == event
    validate_event(event)


@given(mutated_events())
def test_one_thing_wrong_is_rejected_with_the_right_class(case: tuple[dict[str, Any], str]) -> None:
    event, reason_class = case
    result = _outcome(encode(event))
    assert isinstance(result, InvalidEvent), f"accepted: {event}"
    assert result.reason_class == reason_class, result.reason


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)
@given(malformed_messages_with_class())
def test_malformed_messages_are_rejected_with_their_class(case: tuple[bytes, str]) -> None:
    body, reason_class = case
    result = _outcome(body)
    assert isinstance(result, InvalidEvent), f"accepted: {body[:300]!r}"
    assert result.reason_class == reason_class, result.reason


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
          deadline=None, max_examples=50)
@given(malformed_messages(sqs_safe=True))
def test_sqs_safe_malformed_messages_fit_sqs_and_are_rejected(body: bytes) -> None:
    assert len(body) <= 256 * 1024
    body.decode("utf-8")
    assert isinstance(_outcome(body), InvalidEvent)


def test_sample_malformed_gives_a_reproducible_even_mix() -> None:
    sample = sample_malformed(70)
    assert sample == sample_malformed(70)
    assert len(sample) == 70 == len({body for body, _ in sample})
    classes = [cls for _, cls in sample]
    assert set(classes) == set(REASON_CLASSES)
    assert set(classes[:7]) == set(REASON_CLASSES)  # interleaved: any prefix is a mix
    for body, reason_class in sample:
        result = _outcome(body)
        assert isinstance(result, InvalidEvent) and result.reason_class == reason_class
