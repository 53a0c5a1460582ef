"""Export config for custom fields and tags: the worker's check and schemas/config.json agree."""

from __future__ import annotations

from typing import Any

import fastjsonschema
import jsonschema  # a test dependency (through moto): the second, independent 2020-12 validator
import pytest

from worker.events.schemas import load_schema
from worker.settings import ConfigError, FieldMapping, parse_config

VALIDATE = fastjsonschema.compile(load_schema("config"))


def doc(**export: Any) -> dict[str, Any]:
    raw = {"segment": "s", "connection": "c", "list_id": 3, "mapping": {"email": "E"}, **export}
    return {"connections": {"c": {"hostname": "a.api-us1.com", "api_key_env": "X", "data_privacy_consent": True}},
            "exports": {"x": raw}}


def schema_accepts(d: dict[str, Any]) -> bool:
    try:
        VALIDATE(d)
    except fastjsonschema.JsonSchemaValueException:
        return False
    assert jsonschema.Draft202012Validator(load_schema("config")).is_valid(d)
    return True


def test_fields_as_names_or_tables():
    d = doc(fields={"TIER": "Tier", "BIRTHDAY": {"field": "Birthday", "date_format": "DD/MM/YYYY"},
                    "COLOURS": {"field": "Colours", "separator": "|"}},
            tag_field="Interests", tag_separator=";")
    export = parse_config(d).exports["x"]
    assert export.fields == {"TIER": FieldMapping("Tier"), "BIRTHDAY": FieldMapping("Birthday", "DD/MM/YYYY"),
                             "COLOURS": FieldMapping("Colours", separator="|")}
    assert (export.tag_field, export.tag_separator) == ("Interests", ";")
    assert schema_accepts(doc(fields={"TIER": "Tier", "BIRTHDAY": {"field": "Birthday", "date_format": "DD/MM/YYYY"},
                                      "COLOURS": {"field": "Colours", "separator": "|"}},
                              tag_field="Interests", tag_separator=";"))
    assert parse_config(doc(tags=[" a ", "a"])).exports["x"].tags == ("a",)


@pytest.mark.parametrize(("export", "needle"), [
    ({"fields": {"B": {"date_format": "DD/MM/YYYY"}}}, "exports.x.fields.B.field: required"),
    ({"fields": {"B": {"field": "B", "date_format": "DD/MM/YY"}}}, "exports.x.fields.B.date_format"),
    ({"fields": {"B": {"field": "B", "date_format": "DD/MM"}}}, "lacks YYYY"),
    ({"fields": {"B": {"field": "B", "date_format": "DD/MM/YYYY", "tz": "UTC"}}}, "unknown key 'tz'"),
    ({"fields": {"B": {"field": "B", "separator": ""}}}, "separator: must not be empty"),
    ({"fields": {"B": 3}}, "exports.x.fields.B: expected the name of a profile field"),
    ({"fields": {"B": ""}}, "exports.x.fields.B"),
    ({"tag_field": ""}, "exports.x.tag_field"),
    ({"tag_separator": ";"}, "only means something with tag_field"),
    ({"tag_field": "T", "tag_separator": ""}, "tag_separator: must not be empty"),
    ({"tags": ["x" * 256]}, "at most 255"),
])
def test_bad_field_and_tag_settings_name_the_key(export, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        parse_config(doc(**export))


@pytest.mark.parametrize("export", [
    {"fields": {"B": {"date_format": "DD/MM/YYYY"}}},
    {"fields": {"B": {"field": "B", "date_format": "DD/MM/YY"}}},
    {"fields": {"B": {"field": "B", "date_format": "DD/MM"}}},
    {"fields": {"B": {"field": "B", "tz": "UTC"}}},
    {"fields": {"B": {"field": "B", "separator": ""}}},
    {"fields": {"B": 3}},
    {"tag_field": ""},
])
def test_the_schema_rejects_them_too(export):
    assert not schema_accepts(doc(**export))
