"""How a config key is declared: its type (the annotation), its description and bounds (``key(...)``).

Why: the config used to be checked by hand in one file and described again in ``schemas/config.json``,
two lists of keys to keep in step. Now a key exists once, as a dataclass field of a model in
``worker.settings.model``; ``worker.settings.load`` reads TOML into those models and
``worker.settings.schema`` writes the JSON Schema from them, both from the declarations read here.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar


class ConfigError(ValueError):
    """A problem in the configuration; the message names the key and the fix (the CLI exits with 2)."""


Check = Callable[[Any, str], Any]
"""``check(value, path) -> value``: a rule the bounds cannot say, or a normalisation; raises ConfigError."""


@dataclass(frozen=True)
class KeySpec:
    """What the annotation does not say about a key. The same numbers check files and go into the schema.

    ``example`` is a TOML line showing a good value; messages about the key end with it. For a list key,
    the string bounds (``min_length``, ``max_length``, ``pattern``) apply to each item. ``required`` marks
    a key that a file must set although the attribute has a default (code may build the object without
    it). ``why`` is what a value that the pattern or ``const`` refuses is told. ``table`` reads a table
    with fixed keys through that model and keeps it as a plain dict.
    ``redact``: the value may hold a password, so messages never quote it.
    """

    doc: str
    toml: str | None = None
    example: str | None = None
    required: bool = False
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    why: str | None = None
    min_items: int | None = None
    const: bool | None = None
    check: Check | None = None
    table: type[Table] | None = None
    redact: bool = False


def key(doc: str, **details: Any) -> dict[str, KeySpec]:
    """The ``metadata=`` of a dataclass field that is a config key: ``field(default=4, metadata=key(...))``."""
    return {"key": KeySpec(doc, **details)}


class Table:
    """Base of the models of TOML tables.

    The first paragraph of a model's docstring is its description in the schema. ``check`` holds the
    rules between keys of one table (``given``: the keys the file set), ``SCHEMA_RULES`` the same rules
    as schema keywords where a schema can say them.
    """

    DEF_NAME: ClassVar[str] = ""
    """Its name under ``$defs`` in the schema ("" for a table kept inline)."""
    SHORTHAND: ClassVar[str | None] = None
    """The attribute that a bare string stands for (``"Tier"`` for ``{ field = "Tier" }``)."""
    SHORTHAND_TEXT: ClassVar[str] = ""
    SCHEMA_RULES: ClassVar[Mapping[str, Any]] = {}

    def check(self, given: frozenset[str], where: str) -> None:
        """Rules between keys; raise ConfigError naming the keys and the fix."""


@dataclass(frozen=True)
class Setting:
    """One key of a model: attribute name, TOML name, resolved type, spec, and whether a file must set it."""

    attr: str
    name: str
    hint: Any
    spec: KeySpec
    required: bool


_SETTINGS: dict[type[Table], tuple[Setting, ...]] = {}


def settings_of(model: type[Table]) -> tuple[Setting, ...]:
    """The config keys of a model, in declaration order. Fields without ``key(...)`` (an export's ``name``,
    the config's ``path``) are filled by the loader, not read from the file."""
    known = _SETTINGS.get(model)
    if known is None:
        known = _SETTINGS[model] = _settings(model)
    return known


def _settings(model: type[Table]) -> tuple[Setting, ...]:
    hints = typing.get_type_hints(model)
    out: list[Setting] = []
    for f in dataclasses.fields(model):  # type: ignore[arg-type]
        spec = f.metadata.get("key")
        if spec is None:
            continue
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        out.append(Setting(f.name, spec.toml or f.name, hints[f.name], spec, spec.required or no_default))
    return tuple(out)


def keys_of(model: type[Table]) -> tuple[str, ...]:
    """The TOML names of a model's keys."""
    return tuple(s.name for s in settings_of(model))


def summary(model: type[Table]) -> str:
    """The first paragraph of the model's docstring, on one line."""
    doc = (model.__doc__ or "").strip().split("\n\n", 1)[0]
    return " ".join(doc.split())


def optional_of(hint: Any) -> Any:
    """``X | None`` -> ``X``; any other type as it is."""
    args = typing.get_args(hint)
    if type(None) in args and len(args) == 2:
        return next(a for a in args if a is not type(None))
    return hint
