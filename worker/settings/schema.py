"""The JSON Schema of the config file, generated from the models: ``schemas/config.json`` is this output.

Why generated: editors validate with the schema and the worker with the models; written by hand they
drifted. Descriptions, defaults and bounds come from the ``key(...)`` declarations, rules between keys
from the models' ``SCHEMA_RULES``. The committed file is checked against this output by
``tests/settings/test_config_schema_generated.py``; after changing a model, regenerate it with ``COMMAND``.

Only keywords that draft-07 (fastjsonschema) and 2020-12 read alike are used, and ``$ref`` stands alone.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from typing import Any, Literal

from worker.settings.model import Config
from worker.settings.spec import KeySpec, Setting, Table, optional_of, settings_of, summary

COMMAND = ".venv/bin/python -m worker.settings.schema > schemas/config.json"
"""How to regenerate the committed schema (from the repository's root)."""

HEAD: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:segment-export:schema:config:1",
    "title": "segment-export configuration (TOML)",
    "description": "The TOML file given to segment-export with --config. For editors (e.g. Taplo / Even Better "
                   "TOML: `#:schema ./schemas/config.json` on the first line). Generated from the worker's "
                   "models (worker/settings/model.py), so both accept the same keys; `segment-export config "
                   "check` also checks references between tables (an export's connection must exist, its "
                   "owner_role must be in the connection's usable_by).",
}


def config_schema() -> dict[str, Any]:
    """The whole schema, as a dict."""
    defs: dict[str, Any] = {}
    body = _object(Config, defs)
    return {**HEAD, **body, "$defs": defs}


def schema_text() -> str:
    """The schema as committed: two-space indents, keys in declaration order, a final newline."""
    return json.dumps(config_schema(), indent=2, ensure_ascii=False) + "\n"


def _object(model: type[Table], defs: dict[str, Any]) -> dict[str, Any]:
    settings = settings_of(model)
    out: dict[str, Any] = {"type": "object"}
    required = [s.name for s in settings if s.required]
    if required:
        out["required"] = required
    out["properties"] = {s.name: _property(model, s, defs) for s in settings}
    out.update(model.SCHEMA_RULES)
    out["additionalProperties"] = False
    return out


def _property(model: type[Table], s: Setting, defs: dict[str, Any]) -> dict[str, Any]:
    hint = optional_of(s.hint)
    if s.spec.table is not None:
        return {"description": s.spec.doc, **_object(s.spec.table, defs)}
    if isinstance(hint, type) and issubclass(hint, Table):
        return _ref(hint, defs)  # $ref stands alone: the table's own description is in $defs
    out: dict[str, Any] = {"description": s.spec.doc, **_type(hint, s.spec, defs)}
    default = _default(model, s)
    if default is not None and not s.required:
        out["default"] = default
    return out


def _type(hint: Any, spec: KeySpec, defs: dict[str, Any]) -> dict[str, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    out: dict[str, Any]
    if hint is bool:
        out = {"type": "boolean"}
        if spec.const is not None:
            out["const"] = spec.const
    elif hint is int or hint is float:
        out = {"type": "integer" if hint is int else "number"}
        for name, value in (("minimum", spec.minimum), ("exclusiveMinimum", spec.exclusive_minimum),
                            ("maximum", spec.maximum)):
            if value is not None:
                out[name] = value
    elif hint is str:
        out = {"type": "string"}
        for name, bound in (("minLength", spec.min_length), ("maxLength", spec.max_length),
                            ("pattern", spec.pattern)):
            if bound is not None:
                out[name] = bound
    elif origin is Literal:
        out = {"enum": list(args)}
    elif origin is tuple:
        out = {"type": "array", "items": _type(args[0], spec, defs)}
        if spec.min_items is not None:
            out["minItems"] = spec.min_items
    elif origin is dict:
        out = {"type": "object"}
        if isinstance(args[1], type) and issubclass(args[1], Table):
            out["additionalProperties"] = _ref(args[1], defs)
        elif args[1] is not Any:
            out["additionalProperties"] = _type(args[1], spec, defs)
    else:  # pragma: no cover - a model declared a type this generator does not know
        raise TypeError(f"no schema for the type {hint!r}")
    return out


def _ref(model: type[Table], defs: dict[str, Any]) -> dict[str, Any]:
    name = model.DEF_NAME
    if name not in defs:
        defs[name] = {}  # reserve the slot first, so a model that refers to itself ends
        body = _object(model, defs)
        if model.SHORTHAND is not None:
            short = next(s for s in settings_of(model) if s.attr == model.SHORTHAND)
            string = {"type": "string", "description": short.spec.doc, **_type(str, short.spec, defs)}
            defs[name] = {"description": summary(model), "oneOf": [string, body]}
        else:
            defs[name] = {"description": summary(model), **body}
    return {"$ref": f"#/$defs/{name}"}


def _default(model: type[Table], s: Setting) -> Any:
    f = next(f for f in dataclasses.fields(model) if f.name == s.attr)  # type: ignore[arg-type]
    if f.default is not dataclasses.MISSING:
        value: Any = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return None
    if isinstance(value, tuple | dict) and not value:
        return None  # an empty list or table says nothing an editor could show
    return list(value) if isinstance(value, tuple) else value


def main() -> int:
    sys.stdout.write(schema_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
