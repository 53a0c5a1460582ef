"""The schema files themselves: well-formed 2020-12, portable to fastjsonschema, documented by examples.

Why: the files are read by three kinds of tools (our fastjsonschema validators, other teams' 2020-12
validators, editors). A keyword that fastjsonschema (draft-07 semantics) reads differently from 2020-12
would make producer and consumer disagree silently, so only keywords with one meaning are allowed, and the
README examples must pass both validators.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_type_hints

import jsonschema
import pytest

from worker.events.schemas import EVENT_TYPES, InvalidEvent, load_schema, parse_event, validate_event

from .strategies import encode, valid_refreshed, valid_requested

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
README = SCHEMAS_DIR / "README.md"
ALL = (*EVENT_TYPES, "config", "runs")

# Keywords whose meaning is the same in draft-07 (what fastjsonschema compiles) and 2020-12. Not allowed,
# for example: $ref with siblings (ignored in draft-07), dependentRequired, prefixItems, unevaluated*.
PORTABLE_KEYWORDS = {
    "$schema", "$id", "$comment", "$defs", "$ref", "title", "description", "default", "type", "enum", "const",
    "properties", "required", "additionalProperties", "items", "minItems", "minLength", "maxLength",
    "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "if", "then", "else", "oneOf", "not",
}


def readme_examples() -> list[dict[str, Any]]:
    """Every ```json block of schemas/README.md."""
    blocks = re.findall(r"```json\n(.*?)```", README.read_text(), flags=re.DOTALL)
    return [json.loads(block) for block in blocks]


def _subschemas(schema: Any, where: str = "#") -> list[tuple[str, dict[str, Any]]]:
    """Every schema object inside ``schema`` (not the keyword maps themselves), with its location."""
    found: list[tuple[str, dict[str, Any]]] = []
    if not isinstance(schema, dict):
        return found
    found.append((where, schema))
    for key in ("properties", "$defs"):
        for name, sub in schema.get(key, {}).items():
            found += _subschemas(sub, f"{where}/{key}/{name}")
    for key in ("items", "additionalProperties", "if", "then", "not"):
        if isinstance(schema.get(key), dict):
            found += _subschemas(schema[key], f"{where}/{key}")
    for i, sub in enumerate(schema.get("oneOf", [])):
        found += _subschemas(sub, f"{where}/oneOf/{i}")
    return found


@pytest.mark.parametrize("name", ALL)
def test_the_package_data_is_the_top_level_file(name: str) -> None:
    assert load_schema(name) == json.loads((SCHEMAS_DIR / f"{name}.json").read_text())


@pytest.mark.parametrize("name", ALL)
def test_schema_is_valid_2020_12(name: str) -> None:
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("name", ALL)
def test_schema_uses_only_portable_keywords(name: str) -> None:
    for where, sub in _subschemas(load_schema(name)):
        unknown = set(sub) - PORTABLE_KEYWORDS
        assert not unknown, f"{name}.json {where}: keywords {sorted(unknown)} are not read the same by " \
                            f"fastjsonschema (draft-07) and 2020-12 validators"
        if "$ref" in sub:
            assert set(sub) == {"$ref"}, f"{name}.json {where}: draft-07 ignores keywords beside $ref"


@pytest.mark.parametrize("name", EVENT_TYPES)
def test_every_event_schema_pins_type_and_version_and_bounds_its_strings(name: str) -> None:
    schema = load_schema(name)
    assert schema["properties"]["type"] == {"description": "The event name.", "const": name}
    assert schema["properties"]["version"]["const"] == 1
    assert {"type", "version", "id"} <= set(schema["required"])
    assert schema["additionalProperties"] is True  # forward compatibility at the top level
    for where, sub in _subschemas(schema):
        if sub.get("type") == "string":
            assert "maxLength" in sub, f"{name}.json {where}: every string needs a maxLength"


def test_shared_definitions_are_identical_across_files() -> None:
    """The schemas are self-contained (no cross-file $ref), so shared pieces are copies: keep them equal."""
    seen: dict[str, tuple[str, Any]] = {}
    for name in EVENT_TYPES:
        for key, definition in load_schema(name)["$defs"].items():
            if key in seen:
                assert definition == seen[key][1], f"$defs/{key} differs between {seen[key][0]} and {name}"
            else:
                seen[key] = (name, definition)


def test_counts_and_error_are_closed_and_list_exactly_the_published_keys() -> None:
    from worker.events.envelopes import COUNT_KEYS

    for name in ("export.completed", "export.failed"):
        defs = load_schema(name)["$defs"]
        assert defs["counts"]["additionalProperties"] is False
        assert tuple(defs["counts"]["required"]) == COUNT_KEYS
        assert defs["error"]["additionalProperties"] is False
    assert "error" in load_schema("export.failed")["required"]


def test_readme_has_an_example_of_every_event() -> None:
    assert {e["type"] for e in readme_examples()} == set(EVENT_TYPES)


@pytest.mark.parametrize("example", readme_examples(), ids=lambda e: e["type"])
def test_readme_examples_are_valid(example: dict[str, Any]) -> None:
    assert parse_event(encode(example)) == example
    validate_event(example)  # documented fields only: the examples are what we publish
    jsonschema.validate(example, load_schema(example["type"]), cls=jsonschema.Draft202012Validator)


# ------------------------------------------------------------------------------ typed events and new fields

def _typed(cls: Any) -> tuple[set[str], set[str]]:
    """(all keys, required keys) of a TypedDict."""
    return set(get_type_hints(cls)), set(cls.__required_keys__)


def _allowed(name: str) -> set[str]:
    """The schema's top-level properties, less those it forbids (``"not": {}``)."""
    return {k for k, p in load_schema(name)["properties"].items() if "not" not in p}


def test_the_typed_events_have_the_fields_of_their_schemas() -> None:
    """worker/events/envelopes.py's TypedDicts are what mypy checks producers against: they must not drift."""
    from worker.events.envelopes import CompletionEvent, ExportRequested, SegmentRefreshed

    for cls, name in ((SegmentRefreshed, "segment.refreshed"), (ExportRequested, "export.requested")):
        keys, required = _typed(cls)
        assert keys == _allowed(name), name
        assert required == set(load_schema(name)["required"]), name
    keys, required = _typed(CompletionEvent)
    for name in ("export.completed", "export.failed"):
        assert keys == _allowed(name), name
    assert required == set(load_schema("export.completed")["required"])
    assert required | {"error"} == set(load_schema("export.failed")["required"])


def test_segment_refreshed_refuses_allow_mass_removal_with_a_reason_that_says_where_it_belongs() -> None:
    """The override is for one run (export.requested); on a refresh it would disarm the guard every day."""
    for value in (True, False, "yes", None):
        event = {**valid_refreshed(), "allow_mass_removal": value}
        with pytest.raises(InvalidEvent) as caught:
            parse_event(encode(event))
        assert caught.value.reason_class == "schema" and caught.value.path == "allow_mass_removal"
        assert caught.value.reason.startswith("segment.refreshed: allow_mass_removal is not allowed here")
        assert "export.requested" in caught.value.reason and "--allow-mass-removal" in caught.value.reason
    # other teams' 2020-12 validators agree
    assert not jsonschema.Draft202012Validator(load_schema("segment.refreshed")).is_valid(
        {**valid_refreshed(), "allow_mass_removal": True})


def test_export_requested_carries_allow_mass_removal_and_attempt() -> None:
    event = {**valid_requested(), "allow_mass_removal": True, "attempt": 2}
    validate_event(event)
    assert parse_event(encode(event)) == event
    with pytest.raises(InvalidEvent, match="allow_mass_removal must be a boolean, got a string"):
        validate_event({**event, "allow_mass_removal": "true"})
    with pytest.raises(InvalidEvent, match="attempt must be >= 1, got 0"):
        validate_event({**event, "attempt": 0})
    with pytest.raises(InvalidEvent, match="attempt must be an integer, got a boolean"):
        validate_event({**event, "attempt": True})


def test_the_builders_make_valid_events() -> None:
    from worker.events.envelopes import refreshed_event, requested_event, snapshot_ref

    snap = snapshot_ref("s3://cdp-exports/vip/part-0001.csv.gz")
    assert snap == {"uri": "s3://cdp-exports/vip/part-0001.csv.gz", "format": "csv", "compression": "gzip"}
    assert snapshot_ref("/data/vip/", compression="none") == {"uri": "/data/vip/", "format": "jsonl",
                                                             "compression": "none"}
    assert snapshot_ref("s3://cdp-exports/vip/part-00000.snappy.parquet") == {
        "uri": "s3://cdp-exports/vip/part-00000.snappy.parquet", "format": "parquet"}
    with pytest.raises(ValueError, match="format must be jsonl, csv or parquet"):
        snapshot_ref("/data/vip.avro", "avro")
    refreshed = refreshed_event("vip-customers", snap, "refresh-1")
    validate_event(refreshed)
    assert refreshed["refresh_id"] == "refresh-1" and refreshed["snapshot"] == snap
    plain = requested_event("vip-newsletter")
    validate_event(plain)
    assert "allow_mass_removal" not in plain and plain["full"] is False and "snapshot" not in plain
    override = requested_event("vip-newsletter", full=True, snapshot=snap, allow_mass_removal=True)
    validate_event(override)
    assert override["allow_mass_removal"] is True and override["snapshot"] == snap
