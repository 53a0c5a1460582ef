"""Builders of valid events and Hypothesis strategies of malformed ones, for any test suite.

Why shared: the schema tests here and the worker's end-to-end tests (which throw hundreds of malformed
messages at a running worker and expect every one dead-lettered with a reason, and the worker still
consuming) must agree on what "malformed" means. Each malformed body comes with the ``reason_class`` that
``worker.events.schemas.parse_event`` must give it, so a suite can also check the dead-letter reason.

Import as ``from events.strategies import malformed_messages, valid_refreshed`` (``tests/`` is on
``sys.path`` through its rootdir conftest; this folder is a package).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from worker.events.envelopes import COUNT_KEYS, completion_event
from worker.events.schemas import EVENT_TYPES, MAX_EVENT_BYTES, SUPPORTED_VERSION, load_schema

WHEN = "2026-11-28T14:00:00.000Z"

# ------------------------------------------------------------------------------------------ builders


def encode(event: dict[str, Any]) -> bytes:
    """The wire form of an event (what a producer puts in a message body)."""
    return orjson.dumps(event)


def snapshot_for(uri: str, *, profile_count: int | None = None) -> dict[str, Any]:
    """A snapshot object whose format and compression follow the URI's suffix (folders: jsonl)."""
    name = uri.rstrip("/").rsplit("/", 1)[-1].lower()
    compression = "gzip" if name.endswith(".gz") else "none"
    name = name.removesuffix(".gz")
    snapshot: dict[str, Any] = {"uri": uri, "format": "csv" if name.endswith(".csv") else "jsonl",
                                "compression": compression}
    if profile_count is not None:
        snapshot["profile_count"] = profile_count
    return snapshot


def valid_refreshed(segment: str = "vip-customers", uri: str = "file:///data/segments/vip/members.jsonl",
                    refresh_id: str = "refresh-0001", *, event_id: str | None = None,
                    occurred_at: str = WHEN, profile_count: int | None = None,
                    segment_name: str | None = None, fmt: str | None = None) -> dict[str, Any]:
    """A valid ``segment.refreshed`` v1 event (format and compression from the URI unless ``fmt`` is given)."""
    snapshot = snapshot_for(uri, profile_count=profile_count)
    if fmt is not None:
        snapshot["format"] = fmt
    seg: dict[str, Any] = {"id": segment}
    if segment_name is not None:
        seg["name"] = segment_name
    return {"type": "segment.refreshed", "version": SUPPORTED_VERSION, "id": event_id or str(uuid.uuid4()),
            "occurred_at": occurred_at, "segment": seg, "refresh_id": refresh_id, "snapshot": snapshot}


def valid_requested(export: str = "vip-newsletter", *, full: bool | None = None, uri: str | None = None,
                    dry_run: bool | None = None, event_id: str | None = None,
                    occurred_at: str = WHEN, allow_mass_removal: bool | None = None) -> dict[str, Any]:
    """A valid on-demand ``export.requested`` v1 event."""
    event: dict[str, Any] = {"type": "export.requested", "version": SUPPORTED_VERSION,
                             "id": event_id or str(uuid.uuid4()), "occurred_at": occurred_at, "export": export}
    if full is not None:
        event["full"] = full
    if dry_run is not None:
        event["dry_run"] = dry_run
    if allow_mass_removal is not None:
        event["allow_mass_removal"] = allow_mass_removal
    if uri is not None:
        event["snapshot"] = snapshot_for(uri)
    return event


def valid_continuation(export: str = "vip-newsletter", run_id: str = "run-7f3c9a1e2b4d6f80a1c3",
                       refresh_id: str = "refresh-0001", continuation: int = 1, *,
                       segment: str = "vip-customers",
                       uri: str = "file:///data/segments/vip/members.jsonl") -> dict[str, Any]:
    """A valid continuation: the ``export.requested`` a worker publishes to itself to hand a run on."""
    event = valid_requested(export, uri=uri, full=False)
    event.update(run_id=run_id, refresh_id=refresh_id, segment={"id": segment}, continuation=continuation)
    return event


def valid_completion(status: str = "succeeded", **overrides: Any) -> dict[str, Any]:
    """A completion event exactly as ``worker.events.envelopes.completion_event`` builds it."""
    kw: dict[str, Any] = {
        "run_id": "run-7f3c9a1e2b4d6f80a1c3", "export": "vip-newsletter", "segment": "vip-customers",
        "refresh_id": "refresh-0001", "connection": "marketing", "list_id": 3, "status": status,
        "counts": dict.fromkeys(COUNT_KEYS, 0), "started_at": WHEN, "finished_at": WHEN,
        "duration_seconds": 1.25,
    }
    if status == "partial":
        kw["counts"] = {**kw["counts"], "profiles": 3, "added": 2, "failed": 1}
        kw["failures_uri"] = "file:///state/exports/vip-newsletter/runs/run-7f3c9a1e2b4d6f80a1c3/failures.csv"
    if status == "failed":
        kw["error"] = {"code": "snapshot_unreadable", "message": "no such file"}
    kw.update(overrides)
    return completion_event(**kw)


# ---------------------------------------------------------------------------------- valid strategies

_SAFE_TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=40)
_TOKEN = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9._:-]{0,30}\Z")
_TIMES = st.sampled_from([WHEN, "2026-11-28T14:00:00Z", "2026-11-28T15:00:00+01:00",
                          "1999-12-31T23:59:59.999999-05:30"]) | st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(
    lambda d: d.isoformat().replace("+00:00", "Z"))
_URIS = st.sampled_from(["file:///data/segments/vip/", "s3://cdp-exports/vip/part-0001.jsonl.gz",
                         "s3://cdp-exports/vip/members.csv", "/data/segments/vip.csv.gz", "relative/path.jsonl"])
_COUNT = st.integers(min_value=0, max_value=2**53)
_ATTEMPTS = st.integers(min_value=1, max_value=1_000)


@st.composite
def _snapshots(draw: st.DrawFn) -> dict[str, Any]:
    snap: dict[str, Any] = {"uri": draw(_URIS), "format": draw(st.sampled_from(["jsonl", "csv", "parquet"]))}
    if draw(st.booleans()):
        snap["compression"] = draw(st.sampled_from(["none", "gzip"]))
    if draw(st.booleans()):
        snap["profile_count"] = draw(_COUNT)
    return snap


@st.composite
def _refreshed(draw: st.DrawFn) -> dict[str, Any]:
    seg: dict[str, Any] = {"id": draw(_SAFE_TEXT)}
    if draw(st.booleans()):
        seg["name"] = draw(_SAFE_TEXT)
    return {"type": "segment.refreshed", "version": 1, "id": draw(_SAFE_TEXT), "occurred_at": draw(_TIMES),
            "segment": seg, "refresh_id": draw(_SAFE_TEXT), "snapshot": draw(_snapshots())}


@st.composite
def _requested(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "export.requested", "version": 1, "id": draw(_SAFE_TEXT),
                             "occurred_at": draw(_TIMES), "export": draw(_SAFE_TEXT)}
    for key in ("full", "dry_run", "allow_mass_removal"):
        if draw(st.booleans()):
            event[key] = draw(st.booleans())
    if draw(st.booleans()):
        event["snapshot"] = draw(_snapshots())
    if draw(st.booleans()):
        event.update(run_id=draw(_TOKEN), refresh_id=draw(_SAFE_TEXT), segment={"id": draw(_SAFE_TEXT)},
                     continuation=draw(st.integers(min_value=1, max_value=10_000)))
        if draw(st.booleans()):
            event["attempt"] = draw(_ATTEMPTS)
    return event


@st.composite
def _completion(draw: st.DrawFn) -> dict[str, Any]:
    status = draw(st.sampled_from(["succeeded", "partial", "failed"]))
    error = None
    if status == "failed":
        error = {"code": draw(_TOKEN), "message": draw(st.text(max_size=200))}
    event = completion_event(
        run_id=draw(_TOKEN), export=draw(_SAFE_TEXT), segment=draw(_SAFE_TEXT), refresh_id=draw(_SAFE_TEXT),
        connection=draw(_SAFE_TEXT), list_id=draw(st.integers(min_value=1, max_value=2**31)), status=status,
        counts=draw(st.fixed_dictionaries({k: _COUNT for k in COUNT_KEYS})), started_at=draw(_TIMES),
        finished_at=draw(_TIMES), duration_seconds=draw(st.floats(min_value=0, max_value=1e6)),
        failures_uri=draw(st.none() | _URIS), error=error, attempt=draw(st.none() | _ATTEMPTS))
    event["id"] = str(draw(st.uuids()))  # drawn, not random: sample_malformed must be reproducible
    return event


def valid_events() -> st.SearchStrategy[dict[str, Any]]:
    """Valid v1 events of every type, with every optional field sometimes present."""
    return st.one_of(_refreshed(), _requested(), _completion())


# ----------------------------------------------------------------------------- malformed strategies

NON_STRING_SCALARS = st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.floats(
    allow_nan=False, allow_infinity=False)
JSON_SCALARS = NON_STRING_SCALARS | st.text(max_size=30)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=10), inner, max_size=4), max_leaves=12)
"""Arbitrary JSON values (integers within orjson's 64-bit range, no NaN)."""
NON_OBJECTS = JSON_SCALARS | st.lists(JSON_VALUES, max_size=4)
"""Arbitrary JSON values that are not objects (built, not filtered: filters on unions starve branches)."""


def _resolve(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = prop.get("$ref")
    return defs[ref.rsplit("/", 1)[-1]] if ref else prop


def _wrong_values(prop: dict[str, Any]) -> list[Any]:
    """Values of the wrong JSON kind for a property (a bool is not an integer, "3" is not a number)."""
    kind = prop.get("type")
    if kind == "string":
        return [0, 1.5, True, None, [], {}]
    if kind == "integer":
        return ["1", 1.5, True, None, [], {}]
    if kind == "number":
        return ["1", True, None, []]
    if kind == "boolean":
        return ["true", 1, 0, None]
    if kind == "object":
        return ["x", 1, [], None, True]
    return [12345, None, [], {}]  # enum / const of strings


_SCHEMAS = {name: load_schema(name) for name in EVENT_TYPES}
_BAD_VALUES: dict[str, list[Any]] = {  # values of the right kind that break a rule (by $defs name)
    "event_id": ["", "x" * 201, "line\nbreak", "nul\x00"],
    "name": ["", "y" * 201, "tab\there", "cr\r"],
    "timestamp": ["yesterday", "2026-11-28", "2026-11-28 14:00:00", "2026-11-28T14:00:00", "t" * 65],
    "uri": ["", "s3://b/" + "k" * 2048, "file:///x\n.jsonl"],
    "run_id": ["", "../etc", "a/b", ".hidden", "-flag", "with space", "r" * 201],
}


def _class_for(key: str) -> str:
    return {"type": "unknown_type", "version": "unsupported_version"}.get(key, "schema")


@st.composite
def mutated_events(draw: st.DrawFn, *, schema_only: bool = False) -> tuple[dict[str, Any], str]:
    """A valid event with exactly one thing wrong (a field dropped, of the wrong kind, out of bounds, or
    broken inside a nested object), and the reason_class that must report it. ``schema_only``: leave
    ``type`` and ``version`` alone, so the class is always "schema"."""
    event = draw(valid_events())
    etype = event["type"]
    schema = _SCHEMAS[etype]
    defs = schema["$defs"]
    spared = ("type", "version") if schema_only else ()
    how = draw(st.sampled_from(["drop", "wrong_kind", "bad_value", "nested"]))
    if how == "drop":
        key = draw(st.sampled_from([k for k in schema["required"] if k not in spared]))
        del event[key]
        return event, _class_for(key)
    if how == "wrong_kind":
        key = draw(st.sampled_from(sorted(k for k in schema["properties"] if k not in spared)))
        prop = _resolve(schema["properties"][key], defs)
        if key == "version":
            event[key] = draw(st.sampled_from(["1", True, 1.0, None, 2]))
        else:
            event[key] = draw(st.sampled_from(_wrong_values(prop)))
        return event, _class_for(key)
    if how == "bad_value":
        candidates = sorted(k for k, p in schema["properties"].items()
                            if p.get("$ref", "").rsplit("/", 1)[-1] in _BAD_VALUES)
        key = draw(st.sampled_from(candidates))
        event[key] = draw(st.sampled_from(_BAD_VALUES[schema["properties"][key]["$ref"].rsplit("/", 1)[-1]]))
        return event, "schema"
    # nested: break something inside an object field
    nested: list[Callable[[dict[str, Any]], None]] = []
    if isinstance(event.get("snapshot"), dict):
        nested += [lambda e: e["snapshot"].update(format="avro"),
                   lambda e: e["snapshot"].update(compression="zip"),
                   lambda e: e["snapshot"].update(profile_count=-1),
                   lambda e: e["snapshot"].pop("uri"),
                   lambda e: e["snapshot"].update(uri="")]
    if isinstance(event.get("segment"), dict):
        nested += [lambda e: e["segment"].pop("id"), lambda e: e["segment"].update(id="")]
    if isinstance(event.get("counts"), dict):
        nested += [lambda e: e["counts"].update(bonus=1), lambda e: e["counts"].pop("added"),
                   lambda e: e["counts"].update(failed=-1), lambda e: e["counts"].update(profiles=1.5)]
    if isinstance(event.get("error"), dict):
        nested += [lambda e: e["error"].update(trace="..."), lambda e: e["error"].pop("code"),
                   lambda e: e["error"].update(message="m" * 4097)]
    if etype == "export.requested":
        nested += [lambda e: e.update(continuation=0), _continuation_without_run,
                   lambda e: e.update(attempt=0), lambda e: e.update(allow_mass_removal="true")]
    if etype == "segment.refreshed":
        nested += [lambda e: e.update(allow_mass_removal=True)]  # the override is never a refresh's to give
    if etype in ("export.completed", "export.failed"):
        nested += [lambda e: e.update(attempt=0), lambda e: e.update(attempt="2")]
    if etype == "export.completed":
        nested += [lambda e: e.update(status="failed"), lambda e: e.update(list_id=0),
                   lambda e: e.update(duration_seconds=-0.5)]
    if etype == "export.failed":
        nested += [lambda e: e.update(status="partial"), lambda e: e.pop("error")]
    if not nested:  # e.g. a minimal export.requested: break its export name instead
        nested = [lambda e: e.update(export="")]
    draw(st.sampled_from(nested))(event)
    return event, "schema"


def _continuation_without_run(event: dict[str, Any]) -> None:
    event["continuation"] = 1
    event.pop("run_id", None)


def _padded(event: dict[str, Any], extra: int) -> bytes:
    """The event with a top-level padding field making the body ``MAX_EVENT_BYTES + extra`` bytes."""
    base = len(encode({**event, "padding": ""}))
    return encode({**event, "padding": "p" * (MAX_EVENT_BYTES + extra - base)})


def _not_json(data: bytes) -> bool:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return True
    return False


_SQS_TEXT = st.characters(codec="utf-8", exclude_categories=("Cs",)).filter(
    lambda c: c in "\t\n\r" or 0x20 <= ord(c) <= 0xD7FF or 0xE000 <= ord(c) <= 0xFFFD or ord(c) >= 0x10000)


def _sqs_ok(body: bytes) -> bool:
    """Whether SQS would accept the body: at most 256 KiB of UTF-8 in its allowed character ranges."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return len(body) <= MAX_EVENT_BYTES and all(
        c in "\t\n\r" or 0x20 <= ord(c) <= 0xD7FF or 0xE000 <= ord(c) <= 0xFFFD or ord(c) >= 0x10000 for c in text)


def _kinds(*, sqs_safe: bool, include_oversized: bool) -> list[tuple[str, st.SearchStrategy[bytes]]]:
    """(reason_class, bodies) for each kind of malformed message."""
    valid = valid_events()
    random_bytes = (st.text(_SQS_TEXT, max_size=64).map(str.encode) if sqs_safe
                    else st.binary(max_size=64)).filter(_not_json)
    not_json = st.one_of(
        random_bytes,
        st.tuples(valid.map(encode), st.integers(min_value=0)).map(lambda t: t[0][: t[1] % len(t[0])]).filter(
            _not_json),                                                  # truncated
        valid.map(lambda e: encode(e)[:-1] + b",}"),                     # trailing comma
        valid.map(lambda e: b"\xef\xbb\xbf" + encode(e)),               # byte order mark
        st.sampled_from([b"", b" ", b"{", b"NaN", b"{'type': 'segment.refreshed'}", b"[" * 2000 + b"]" * 2000,
                         b'{"type": "segment.refreshed", "version": 1e999}']),
    )
    if not sqs_safe:  # broken UTF-8 inside an otherwise fine event
        not_json = not_json | valid.map(lambda e: encode(e).replace(b'"version"', b'"vers\xff\xfeon"'))
    unknown_type = st.one_of(
        st.tuples(valid, st.text(max_size=40).filter(lambda t: t not in EVENT_TYPES)).map(
            lambda t: {**t[0], "type": t[1]}),
        st.tuples(valid, NON_STRING_SCALARS | st.lists(JSON_SCALARS, max_size=2)).map(
            lambda t: {**t[0], "type": t[1]}),
        valid.map(lambda e: {k: v for k, v in e.items() if k != "type"}),
        st.sampled_from(["segment.deleted", "Segment.Refreshed", "export.completed.v2", "segment.refreshed "]).map(
            lambda t: {"type": t, "version": 1}),
    ).map(encode)
    bad_version = st.tuples(valid, st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63 - 1).filter(lambda v: v != SUPPORTED_VERSION),
        st.sampled_from(["1", "v1", True, False, None, 1.0, 1.5, [1], {"major": 1}]),
    )).map(lambda t: encode({**t[0], "version": t[1]}))
    missing_version = valid.map(lambda e: encode({k: v for k, v in e.items() if k != "version"}))
    schema = mutated_events(schema_only=True).map(lambda t: encode(t[0]))
    kinds: list[tuple[str, st.SearchStrategy[bytes]]] = [
        ("not_json", not_json),
        ("not_an_object", NON_OBJECTS.map(orjson.dumps)),
        ("unknown_type", unknown_type),
        ("unsupported_version", bad_version | missing_version),
        ("schema", schema),
        ("schema", schema),  # twice: the most varied kind
    ]
    if include_oversized and not sqs_safe:
        kinds.append(("too_large", st.tuples(valid, st.integers(min_value=1, max_value=64 * 1024)).map(
            lambda t: _padded(t[0], t[1]))))
    if sqs_safe:
        kinds = [(cls, bodies.filter(_sqs_ok)) for cls, bodies in kinds]
    return kinds


def malformed_messages_with_class(*, sqs_safe: bool = False,
                                  include_oversized: bool = True) -> st.SearchStrategy[tuple[bytes, str]]:
    """(body, reason_class) pairs: a varied mix of message bodies that ``parse_event`` must reject.

    Kinds, about equally often: invalid JSON (random bytes, truncated events, broken UTF-8, a byte order
    mark, empty), JSON that is not an object, unknown or missing ``type``, unsupported or missing
    ``version``, one broken field of a valid event (dropped, wrong kind, out of bounds, nested; twice as
    often), and oversized bodies (> 256 KiB). ``sqs_safe=True`` keeps to what SQS can carry (UTF-8 in its
    character ranges, at most 256 KiB: so no oversized bodies).
    """
    kinds = [bodies.map(lambda b, cls=cls: (b, cls))
             for cls, bodies in _kinds(sqs_safe=sqs_safe, include_oversized=include_oversized)]
    # Pick the kind uniformly first: st.one_of drifts towards the branches that are cheapest to generate.
    return st.integers(min_value=0, max_value=len(kinds) - 1).flatmap(lambda i: kinds[i])


def malformed_messages(*, sqs_safe: bool = False, include_oversized: bool = True) -> st.SearchStrategy[bytes]:
    """Message bodies that ``parse_event`` must reject (see ``malformed_messages_with_class``)."""
    return malformed_messages_with_class(sqs_safe=sqs_safe, include_oversized=include_oversized).map(lambda t: t[0])


def _draw_distinct(bodies: st.SearchStrategy[bytes], count: int, first_seed: int) -> list[bytes]:
    """``count`` distinct bodies drawn reproducibly (Hypothesis may repeat itself, so dedupe and top up)."""
    found: dict[bytes, None] = {}
    for attempt in range(20):
        @settings(max_examples=count, database=None, phases=[Phase.generate], deadline=None,
                  suppress_health_check=list(HealthCheck))
        @seed(first_seed + attempt)
        @given(bodies)
        def collect(body: bytes) -> None:
            found.setdefault(body)

        collect()
        if len(found) >= count:
            break
    return list(found)[:count]


def sample_malformed(n: int = 200, *, seed_value: int = 20261128, sqs_safe: bool = False,
                     include_oversized: bool = True) -> list[tuple[bytes, str]]:
    """``n`` distinct (body, reason_class) pairs, drawn reproducibly and spread evenly over the kinds.

    For a test that is not itself ``@given``: e.g. publish them all to a running worker, then expect ``n``
    dead-lettered messages whose reasons carry these classes and the worker still consuming. Call it from a
    plain test or fixture (Hypothesis does not nest ``@given``). About a second for 200.
    """
    kinds = _kinds(sqs_safe=sqs_safe, include_oversized=include_oversized)
    per_kind = -(-n // len(kinds)) + 4  # a few spare: small kinds may repeat, and kinds may overlap
    columns = [[(body, cls) for body in _draw_distinct(bodies, per_kind, seed_value + 1000 * i)]
               for i, (cls, bodies) in enumerate(kinds)]
    mixed: dict[bytes, str] = {}
    for row in range(per_kind):  # round robin, so any prefix of the list is a mix too
        for column in columns:
            if row < len(column):
                mixed.setdefault(*column[row])
    if len(mixed) < n:
        raise RuntimeError(f"could only draw {len(mixed)} distinct malformed messages of {n}")
    return list(mixed.items())[:n]
