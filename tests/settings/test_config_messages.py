"""Every problem in a config file is reported with the key's dotted path and what would be right.

Why generic: the checks are driven by the model declarations, so one walk over every declared key shows
that none of them (including keys added later) can fail with a message that does not name it.
"""

from __future__ import annotations

import copy
import typing
from typing import Any

import pytest

from worker.settings import Config, ConfigError, Connection, Export, WorkerSettings, parse_config
from worker.settings.model import ContactMapping, FieldMapping, IngressSettings, Segment
from worker.settings.spec import Setting, Table, optional_of, settings_of

VALID: dict[str, Any] = {
    "worker": {},
    "connections": {"c": {"hostname": "a.api-us1.com", "api_key_env": "X", "data_privacy_consent": True}},
    "exports": {"x": {"segment": "s", "connection": "c", "list_id": 3, "mapping": {"email": "E"},
                      "fields": {"F": {"field": "Birthday"}}}},
    "segments": {"s": {"triggers": ["s3://b/s/*/_SUCCESS"]}},
    "ingress": {},
}
#: Where each table model sits in VALID.
PLACES: dict[type[Table], tuple[str, ...]] = {
    WorkerSettings: ("worker",),
    Connection: ("connections", "c"),
    Export: ("exports", "x"),
    ContactMapping: ("exports", "x", "mapping"),
    FieldMapping: ("exports", "x", "fields", "F"),
    Segment: ("segments", "s"),
    IngressSettings: ("ingress",),
}
EVERY_KEY = [(model, s) for model in (Config, *PLACES) for s in settings_of(model)]


def _set(place: tuple[str, ...], name: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    table = doc
    for step in place:
        table = table[step]
    table[name] = value
    return doc


def _wrong_type(s: Setting) -> Any:
    """A value no key of this type takes: a table for scalars and lists, a number for tables."""
    hint = optional_of(s.hint)
    is_table = typing.get_origin(hint) is dict or s.spec.table is not None or (
        isinstance(hint, type) and issubclass(hint, Table))
    return 5 if is_table else {"a": 1}


def _models_under(model: type[Table]) -> set[type[Table]]:
    found: set[type[Table]] = set()
    for s in settings_of(model):
        hint = optional_of(s.hint)
        for t in (hint, *typing.get_args(hint), s.spec.table):
            if isinstance(t, type) and issubclass(t, Table) and t not in found:
                found |= {t} | _models_under(t)
    return found


def test_the_walk_covers_every_model() -> None:
    assert _models_under(Config) == set(PLACES), "place the new table model in VALID and PLACES"
    assert parse_config(VALID).exports["x"].fields["F"] == FieldMapping("Birthday")


@pytest.mark.parametrize(("model", "s"), EVERY_KEY, ids=lambda v: getattr(v, "name", getattr(v, "__name__", "")))
def test_a_wrong_type_names_the_key(model: type[Table], s: Setting) -> None:
    place = PLACES.get(model, ())
    with pytest.raises(ConfigError) as err:
        parse_config(_set(place, s.name, _wrong_type(s)))
    path = ".".join((*place, s.name))
    assert str(err.value).startswith(f"{path}: expected "), str(err.value)


BOUNDED = [(m, s) for m, s in EVERY_KEY
           if s.spec.minimum is not None or s.spec.exclusive_minimum is not None or s.spec.maximum is not None]


@pytest.mark.parametrize(("model", "s"), BOUNDED, ids=lambda v: getattr(v, "name", getattr(v, "__name__", "")))
def test_out_of_bounds_names_the_key_and_the_bound(model: type[Table], s: Setting) -> None:
    place = PLACES[model]
    hint, spec = optional_of(s.hint), s.spec
    if spec.maximum is not None:
        bad, bound = spec.maximum + 1, spec.maximum
    elif spec.minimum is not None:
        bad, bound = spec.minimum - 1, spec.minimum
    else:
        assert spec.exclusive_minimum is not None
        bad, bound = spec.exclusive_minimum, spec.exclusive_minimum
    bad = int(bad) if hint is int else float(bad)
    with pytest.raises(ConfigError) as err:
        parse_config(_set(place, s.name, bad))
    message = str(err.value)
    path = ".".join((*place, s.name))
    assert message.startswith(f"{path}: expected "), message
    assert f"got {bad!r}" in message
    assert f"{int(bound)}" in message or "positive" in message


@pytest.mark.parametrize(("model", "s"), [(m, s) for m, s in EVERY_KEY if s.required],
                         ids=lambda v: getattr(v, "name", getattr(v, "__name__", "")))
def test_a_missing_key_is_named_as_required(model: type[Table], s: Setting) -> None:
    place = PLACES[model]
    doc = copy.deepcopy(VALID)
    table = doc
    for step in place:
        table = table[step]
    del table[s.name]
    with pytest.raises(ConfigError) as err:
        parse_config(doc)
    assert str(err.value).startswith(f"{'.'.join((*place, s.name))}: required. {s.spec.doc}")


def test_the_enum_message_reads_like_the_fix() -> None:
    doc = _set(("exports", "x"), "on_leave", "keeep")
    with pytest.raises(ConfigError) as err:
        parse_config(doc)
    assert str(err.value) == 'exports.x.on_leave: expected "unsubscribe" or "keep", got "keeep"'


@pytest.mark.parametrize(("place", "name", "suggestion"), [
    ((), "export", "'exports'"),
    (("worker",), "concurency", "'concurrency'"),
    (("connections", "c"), "api_key_envv", "'api_key_env'"),
    (("exports", "x"), "on_leav", "'on_leave'"),
    (("exports", "x", "mapping"), "first-name", "'first_name'"),
    (("exports", "x", "fields", "F"), "date-format", "'date_format'"),
])
def test_an_unknown_key_is_named_with_the_likely_one(place: tuple[str, ...], name: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_set(place, name, "x"))
    where = ".".join(place) or "top level"
    assert str(err.value).startswith(f"{where}: unknown key {name!r} (did you mean {suggestion}?); allowed keys are:")


def test_an_unknown_key_without_a_likely_one_asks_to_check_the_spelling() -> None:
    with pytest.raises(ConfigError, match=r"^worker: unknown key 'zzz' \(check the spelling\); allowed keys are: "):
        parse_config(_set(("worker",), "zzz", 1))
