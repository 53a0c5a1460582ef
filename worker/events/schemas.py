"""Validate events against the JSON Schemas in ``schemas/`` (shipped as the package ``worker.schemas``).

Why a module of its own: every message on the requests queue comes from outside the process and may be
malformed or hostile, so the worker must turn any body into either a valid event or one ``InvalidEvent``
with a clear, bounded reason (dead-lettered, counted by ``reason_class``) and never crash or stall on it.
The same schemas check the events we publish, so producer and consumer cannot drift apart.

Order of checks, cheapest and most telling first: size (before parsing, so a huge body costs nothing),
JSON, object, ``type``, ``version``, then the compiled schema of that type and version.

Why fastjsonschema: it compiles each schema to Python code once, which validates about ten times faster
than ``jsonschema``; it is small and pure Python. It implements draft-07 (plus draft 2019 formats), so
the schemas use only keywords that mean the same in draft-07 and 2020-12 (a test enforces the list).

Reasons never quote more than ~60 characters of the input and never exceed ``MAX_REASON_CHARS``: they go
to logs, dead-letter headers and metrics, and a hostile body must not make us store megabytes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any, Final

import fastjsonschema
import orjson

EVENT_TYPES: Final[tuple[str, ...]] = ("segment.refreshed", "export.requested", "export.completed", "export.failed")
"""Every event type of version 1; one schema file each."""

OTHER_SCHEMAS: Final[tuple[str, ...]] = ("config", "runs")
"""The schemas in ``schemas/`` that are not events: the config file, ``segment-export runs --json``."""

CONSUMED_TYPES: Final[tuple[str, ...]] = ("segment.refreshed", "export.requested")
"""The types the worker takes from its requests queue (the others it only publishes)."""

SUPPORTED_VERSION: Final = 1
MAX_EVENT_BYTES: Final = 256 * 1024
"""Largest body we parse; real events are well under 4 KiB. Also SQS's limit for one message."""

REASON_CLASSES: Final[tuple[str, ...]] = (
    "not_json", "too_large", "not_an_object", "unknown_type", "unsupported_version", "schema",
)
"""The bounded set of ``InvalidEvent.reason_class`` values: safe as a metrics label."""

MAX_REASON_CHARS: Final = 300
_ECHO_CHARS: Final = 60  # at most this much of any offending input value is quoted in a reason

_NO_CONTROL = "^[^\\u0000-\\u001f\\u007f]*$"
_TOKEN = "^[A-Za-z0-9_][A-Za-z0-9._:-]*$"
_PATTERN_TEXT: Final[Mapping[str, str]] = {
    _NO_CONTROL: "must not contain control characters (newline, tab, NUL, ...)",
    _TOKEN: "must be letters, digits and . _ : - only, not starting with . or -",
}
_FORMAT_TEXT: Final[Mapping[str, str]] = {
    "date-time": "must be an RFC 3339 date-time with a time zone, like 2026-11-28T14:05:00Z",
}
_MISSING: Final = object()


class InvalidEvent(ValueError):
    """A message body that is not a valid event: dead-letter it with ``reason``, count it by ``reason_class``.

    ``reason`` is human text naming the problem (at most ``MAX_REASON_CHARS``, quoting at most ~60 characters
    of the input); ``reason_class`` is one of ``REASON_CLASSES``; ``event_type`` is the event's type when
    it is one of ``EVENT_TYPES`` (else None), so it too is a safe metrics label; ``path`` names the
    offending field (e.g. ``snapshot.format``) for schema errors.
    """

    reason: str
    reason_class: str
    event_type: str | None
    path: str | None

    def __init__(self, reason_class: str, reason: str, *, event_type: str | None = None,
                 path: str | None = None) -> None:
        if reason_class not in REASON_CLASSES:  # a typo here would mint a new metrics label
            raise ValueError(f"unknown reason_class {reason_class!r}")
        reason = _clip(reason, MAX_REASON_CHARS)
        super().__init__(reason)
        self.reason = reason
        self.reason_class = reason_class
        self.event_type = event_type
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        """Keep keyword attributes when pickled (e.g. across a process pool)."""
        return (_rebuild_invalid_event, (self.reason_class, self.reason, self.event_type, self.path))


def _rebuild_invalid_event(reason_class: str, reason: str, event_type: str | None, path: str | None) -> InvalidEvent:
    return InvalidEvent(reason_class, reason, event_type=event_type, path=path)


# ------------------------------------------------------------------------------------------ public API

def parse_event(body: bytes | bytearray | memoryview | str) -> dict[str, Any]:
    """The validated event in a raw message body; raises ``InvalidEvent`` for anything else.

    Pass the raw body (kombu: ``message.body``), not a payload the transport already decoded, so that
    undecodable bodies are classified here too. Unknown top-level fields are kept (forward compatibility:
    a newer producer may add fields); use only the documented ones.
    """
    event = decode_body(body)
    _validate(event, allow_extra_fields=True)
    valid: dict[str, Any] = event  # _validate proved it is an object
    return valid


def decode_body(body: bytes | bytearray | memoryview | str) -> Any:
    """The JSON in a raw message body, size checked first; raises ``InvalidEvent`` (too_large, not_json).

    The worker reads a body once and then decides what it is: an upstream notification
    (``worker.events.notifications``) or one of our events (``validate_event``).
    """
    data = _as_bytes(body)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("not_json", f"body is not valid JSON: {_clip(str(exc), 120)}") from None


def validate_event(event: Any, *, allow_extra_fields: bool = False) -> None:
    """Check an event we are about to publish (or any decoded event); raises ``InvalidEvent``.

    By default unknown top-level fields are rejected here, unlike in ``parse_event``: what we send must be
    exactly the documented contract, so a field added by mistake (a hostname, profile data) fails in tests
    instead of leaking. Pass ``allow_extra_fields=True`` to apply the consumer's rules to a decoded event.
    """
    _validate(event, allow_extra_fields=allow_extra_fields)


def load_schema(name: str) -> dict[str, Any]:
    """A fresh copy of one schema (an event type of ``EVENT_TYPES``, ``"config"`` or ``"runs"``: the output of
    ``segment-export runs --json``) from the package data."""
    if name not in (*EVENT_TYPES, *OTHER_SCHEMAS):
        raise ValueError(f"no schema named {name!r}; known: {', '.join((*EVENT_TYPES, *OTHER_SCHEMAS))}")
    try:
        raw = resources.files("worker.schemas").joinpath(f"{name}.json").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise RuntimeError(
            f"schema {name}.json is not installed with the package ({exc}); the top-level schemas/ folder ships "
            f"as worker.schemas: reinstall with `pip install -e .` (or install the wheel)"
        ) from exc
    schema: dict[str, Any] = orjson.loads(raw)
    return schema


def load_validators() -> None:
    """Compile every event schema now (about 0.1 s): call at start so a broken install fails at once,
    not at the first message."""
    _validators()


# ---------------------------------------------------------------------------------------------- checks

@functools.cache
def _validators() -> dict[str, Callable[[Any], Any]]:
    """One compiled validator per event type, built once per process (a race compiles twice, harmlessly)."""
    return {name: fastjsonschema.compile(load_schema(name)) for name in EVENT_TYPES}


@functools.cache
def _top_level_fields() -> dict[str, frozenset[str]]:
    return {name: frozenset(load_schema(name)["properties"]) for name in EVENT_TYPES}


def _as_bytes(body: bytes | bytearray | memoryview | str) -> bytes | bytearray:
    """The body as bytes, refusing oversized ones before any decoding work."""
    if isinstance(body, memoryview):
        if body.nbytes > MAX_EVENT_BYTES:
            raise _too_large(body.nbytes)
        return body.tobytes()
    if isinstance(body, bytes | bytearray):
        if len(body) > MAX_EVENT_BYTES:
            raise _too_large(len(body))
        return body
    if isinstance(body, str):
        if len(body) > MAX_EVENT_BYTES:  # UTF-8 has at least one byte per character
            raise _too_large(len(body))
        try:
            data = body.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidEvent("not_json", "body is not valid JSON: it holds a lone UTF-16 surrogate") from None
        if len(data) > MAX_EVENT_BYTES:
            raise _too_large(len(data))
        return data
    raise TypeError(f"parse_event takes the raw message body (bytes or str), not {type(body).__name__}")


def _too_large(size: int) -> InvalidEvent:
    return InvalidEvent("too_large", f"body is {size} bytes, more than the {MAX_EVENT_BYTES} bytes an event may have")


def _validate(event: Any, *, allow_extra_fields: bool) -> None:
    if not isinstance(event, dict):
        raise InvalidEvent("not_an_object", f"an event must be a JSON object, got {_kind(event)}")
    etype = event.get("type", _MISSING)
    known = ", ".join(EVENT_TYPES)
    if etype is _MISSING:
        raise InvalidEvent("unknown_type", f"event has no \"type\" field; expected one of {known}")
    if not isinstance(etype, str):
        raise InvalidEvent("unknown_type", f"event type must be a string, got {_kind(etype)}")
    if etype not in EVENT_TYPES:
        raise InvalidEvent("unknown_type", f"unknown event type {_quote(etype)}; expected one of {known}")
    version = event.get("version", _MISSING)
    if version is _MISSING:
        raise InvalidEvent("unsupported_version", f"{etype}: event has no \"version\" field; "
                                                  f"this worker reads version {SUPPORTED_VERSION}", event_type=etype)
    if type(version) is not int or version != SUPPORTED_VERSION:  # True == 1 and 1.0 == 1 in Python: not here
        raise InvalidEvent("unsupported_version", f"{etype}: unsupported version {_quote(version)}; "
                                                  f"this worker reads version {SUPPORTED_VERSION}", event_type=etype)
    try:
        _validators()[etype](event)
    except fastjsonschema.JsonSchemaValueException as exc:
        path, text = _describe(exc)
        # ``from None``: fastjsonschema's own message may quote unbounded input (e.g. unknown keys).
        raise InvalidEvent("schema", f"{etype}: {text}", event_type=etype, path=path) from None
    if not allow_extra_fields:
        extra = sorted(k for k in event if k not in _top_level_fields()[etype])
        if extra:
            more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
            raise InvalidEvent("schema", f"{etype}: unknown top-level field {_quote(extra[0])}{more}; events we "
                                         f"publish carry only the documented fields", event_type=etype, path=None)


def _describe(exc: fastjsonschema.JsonSchemaValueException) -> tuple[str, str]:
    """(field path, human text) for a schema violation, built from the rule, not from the input."""
    name = exc.name or "data"
    path = _clip("event" if name == "data" else name.removeprefix("data."), 100)
    rule = exc.rule
    definition: dict[str, Any] = exc.definition if isinstance(exc.definition, dict) else {}
    value = exc.value
    if rule == "required" and isinstance(value, dict):
        missing = [k for k in definition.get("required", ()) if k not in value]
        where = "" if path == "event" else f"{path}."
        text = f"{where}{missing[0] if missing else '?'} is required"
        if len(missing) > 1:
            text += f" (and {', '.join(missing[1:])})"
        if "properties" not in definition and definition.get("description"):  # an if/then rule explains itself
            text += f": {definition['description']}"
        return (f"{where}{missing[0]}" if missing else path), text  # the field that is missing
    if rule == "type":
        expected = definition.get("type")
        kinds = " or ".join(_article(t) for t in (expected if isinstance(expected, list) else [expected]))
        return path, f"{path} must be {kinds}, got {_kind(value)}"
    if rule == "enum":
        choices = ", ".join(str(c) for c in definition.get("enum", ()))
        return path, f"{path} must be one of {choices}, got {_quote(value)}"
    if rule == "const":
        return path, f"{path} must be {_quote(definition.get('const'))}, got {_quote(value)}"
    if rule == "minLength":
        n = definition.get("minLength", 1)
        return path, f"{path} must not be empty" if n == 1 else f"{path} must be at least {n} characters"
    if rule == "maxLength":
        size = len(value) if isinstance(value, str) else "?"
        return path, f"{path} must be at most {definition.get('maxLength')} characters, got {size}"
    if rule == "pattern":
        pattern = definition.get("pattern", "")
        return path, f"{path} {_PATTERN_TEXT.get(pattern, 'must match ' + _clip(pattern, 80))}, got {_quote(value)}"
    if rule == "format":
        fmt = definition.get("format", "")
        return path, f"{path} {_FORMAT_TEXT.get(fmt, 'must be a ' + fmt)}, got {_quote(value)}"
    if rule in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[rule]
        return path, f"{path} must be {op} {definition.get(rule)}, got {_quote(value)}"
    if rule == "not":  # a field that must never appear here; its description says where it belongs
        why = definition.get("description")
        banned = definition.get("not", {}).get("required") if isinstance(definition.get("not"), dict) else None
        if path == "event" and banned:  # an if/else rule: a top-level field this kind of event must not carry
            path = _clip(str(banned[0]), 100)
        return path, f"{path} is not allowed here" + (f": {_clip(str(why), 200)}" if why else "")
    if rule == "additionalProperties" and isinstance(value, dict):
        allowed = definition.get("properties", {})
        extra = sorted(k for k in value if k not in allowed)
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        return path, (f"{path} has unknown field {_quote(extra[0] if extra else '?')}{more}; "
                      f"allowed: {', '.join(allowed)}")
    return path, f"{path} is invalid ({_clip(str(rule), 40)})"


# --------------------------------------------------------------------------------- bounded text helpers

def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(value: Any) -> str:
    """The JSON kind of a value, e.g. 'a string': says what was wrong without quoting it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return _clip(type(value).__name__, 40)


def _article(json_type: Any) -> str:
    names = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean",
             "object": "an object", "array": "an array", "null": "null"}
    return names.get(json_type, _clip(str(json_type), 20))


def _quote(value: Any) -> str:
    """A short, safe rendering of an input value: strings and small scalars quoted (clipped), the rest by kind."""
    if isinstance(value, str):
        shown = repr(value[:_ECHO_CHARS])
        return shown + (f"... ({len(value)} characters)" if len(value) > _ECHO_CHARS else "")
    if value is None or isinstance(value, bool):
        return orjson.dumps(value).decode()  # null, true, false: as the sender wrote them
    if isinstance(value, float):
        return _clip(repr(value), 40)
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 64 else "a very large integer"  # str() of huge ints is slow
    return _kind(value)
