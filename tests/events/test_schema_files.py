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
from typing import Any

import pytest

from worker.event_schemas import EVENT_TYPES, load_schema, parse_event, validate_event

from .strategies import encode

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
README = SCHEMAS_DIR / "README.md"
ALL = (*EVENT_TYPES, "config")

# Keywords whose meaning is the same in draft-07 (what fastjsonschema compiles) and 2020-12. Not allowed,
# for example: $ref with siblings (ignored in draft-07), dependentRequired, prefixItems, unevaluated*.
PORTABLE_KEYWORDS = {
    "$schema", "$id", "$comment", "$defs", "$ref", "title", "description", "default", "type", "enum", "const",
    "properties", "required", "additionalProperties", "items", "minItems", "minLength", "maxLength",
    "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "if", "then", "oneOf", "not",
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
    jsonschema = pytest.importorskip("jsonschema")
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
    from worker.events import COUNT_KEYS

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
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(example, load_schema(example["type"]), cls=jsonschema.Draft202012Validator)
