"""TOML -> the models of ``worker.settings.model``, refusing anything they do not declare.

Why strict: a typo in a config key is the most common way an export silently does the wrong thing
(e.g. ``on_leav = "keep"`` unsubscribing a whole list), so an unknown key is an error that names it (and
the key it probably meant). Every problem raises ``ConfigError`` with the key's dotted path and the fix;
the CLI turns it into exit code 2. Checking is driven by the declarations alone (annotation, bounds,
``check`` hook, the models' ``check`` rules): there is no second list of keys here.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

from worker.settings.model import Config
from worker.settings.spec import ConfigError, KeySpec, Setting, Table, optional_of, settings_of

T = TypeVar("T", bound=Table)
_SHOWN_CHARS = 60  # values are quoted in messages, never at length
_KNOWN_SCHEMES = frozenset({"http", "https", "tcp", "amqp", "amqps", "pyamqp", "sqs", "memory", "redis", "rediss",
                            "unix", "redis+sentinel", "valkey", "file", "s3", "az", "abfss"})


def parse_config(data: dict[str, Any], path: str = "") -> Config:
    """Validate a parsed TOML document into a Config (raises ConfigError)."""
    return read_table(Config, data, "", {"path": path})


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML config file."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p} (pass --config PATH)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return parse_config(data, str(p))


def read_table(model: type[T], raw: Any, where: str, extra: dict[str, Any] | None = None) -> T:
    """One table (or the shorthand string a model allows) into ``model``; ``extra`` fills non-key fields."""
    settings = settings_of(model)
    if model.SHORTHAND is not None and isinstance(raw, str):
        short = next(s for s in settings if s.attr == model.SHORTHAND)
        return model(**{short.attr: _read(short, raw, where)}, **(extra or {}))
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected {_table_phrase(model)}, got {_show(raw)}{_eg(_example(model))}")
    _refuse_unknown(raw, settings, where)
    kwargs = dict(extra or {})
    for s in settings:
        at = f"{where}.{s.name}" if where else s.name
        if s.name in raw:
            kwargs[s.attr] = _read(s, raw[s.name], at)
        elif s.required:
            example = f" For example: {s.spec.example}" if s.spec.example else ""
            raise ConfigError(f"{at}: required. {s.spec.doc}{example}")
    table = model(**kwargs)
    table.check(frozenset(raw), where)
    return table


def _refuse_unknown(raw: dict[str, Any], settings: tuple[Setting, ...], where: str) -> None:
    allowed = [s.name for s in settings]
    for name in raw:
        if name not in allowed:
            close = difflib.get_close_matches(str(name), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else " (check the spelling)"
            raise ConfigError(f"{where or 'top level'}: unknown key {name!r}{hint}; allowed keys are: "
                              f"{', '.join(sorted(allowed))}")


def _read(s: Setting, value: Any, at: str) -> Any:
    """Type, then the key's ``check`` (hints for common mistakes, normalising), then its bounds."""
    value = _typed(optional_of(s.hint), value, at, s)
    if s.spec.check is not None:
        value = s.spec.check(value, at)
    _bounds(value, at, s.spec)
    return value


def _typed(hint: Any, value: Any, at: str, s: Setting) -> Any:
    spec, origin, args = s.spec, typing.get_origin(hint), typing.get_args(hint)
    if isinstance(hint, type) and issubclass(hint, Table):
        return read_table(hint, value, at)
    ok: bool
    if spec.table is not None:
        if isinstance(value, dict):
            table = read_table(spec.table, value, at)
            return {t.name: getattr(table, t.attr) for t in settings_of(spec.table)
                    if getattr(table, t.attr) is not None}
        ok = False
    elif hint is bool:
        ok = type(value) is bool
    elif hint is int:
        ok = type(value) is int
    elif hint is float:
        ok = type(value) in (int, float) and math.isfinite(value)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    elif origin is Literal:
        ok = isinstance(value, str) and value in args
    elif origin is tuple:
        if isinstance(value, list):
            return tuple(_typed(args[0], item, f"{at}[{i}]", s) for i, item in enumerate(value))
        ok = False
    elif origin is dict:
        if isinstance(value, dict):
            return _typed_dict(args[1], value, at, s)
        ok = False
    else:  # pragma: no cover - a model declared a type this loader does not read
        raise TypeError(f"{at}: no reader for the type {hint!r}")
    if ok:
        return value
    if hint in (int, float) and isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+(\.\d+)?\s*", value):
        noun = "an integer" if hint is int else "a number"
        raise ConfigError(f"{at}: must be {noun}, not a string: {s.name} = {value.strip()}")
    raise ConfigError(f"{at}: expected {_expected(hint, spec)}, got {_show(value, spec)}{_eg(spec.example)}")


def _typed_dict(item: Any, value: dict[str, Any], at: str, s: Setting) -> dict[str, Any]:
    if item is Any:
        return dict(value)
    if isinstance(item, type) and issubclass(item, Table):
        named = any(f.name == "name" for f in dataclasses.fields(item))  # type: ignore[arg-type]
        return {k: read_table(item, v, f"{at}.{k}", {"name": k} if named else None) for k, v in value.items()}
    return {k: _typed(item, v, f"{at}.{k}", s) for k, v in value.items()}


def _bounds(value: Any, at: str, spec: KeySpec) -> None:
    if isinstance(value, tuple):
        if spec.min_items is not None and len(value) < spec.min_items:
            least = "must not be an empty list" if spec.min_items == 1 else f"must list at least {spec.min_items}"
            raise ConfigError(f"{at}: {least}{_eg(spec.example)}")
        for i, item in enumerate(value):
            _bounds(item, f"{at}[{i}]", spec)
        return
    if isinstance(value, bool):
        if spec.const is not None and value is not spec.const:
            raise ConfigError(f"{at}: must be {_show(spec.const)}: {spec.why or spec.doc}")
        return
    if isinstance(value, int | float):
        if ((spec.minimum is not None and value < spec.minimum)
                or (spec.exclusive_minimum is not None and value <= spec.exclusive_minimum)
                or (spec.maximum is not None and value > spec.maximum)):
            kind: type = int if isinstance(value, int) else float
            raise ConfigError(f"{at}: expected {_expected(kind, spec)}, got {_show(value)}{_eg(spec.example)}")
        return
    if isinstance(value, str):
        if spec.min_length is not None and len(value) < spec.min_length:
            raise ConfigError(f"{at}: must not be empty{_eg(spec.example)}")
        if spec.max_length is not None and len(value) > spec.max_length:
            raise ConfigError(f"{at}: {len(value)} characters; at most {spec.max_length} are allowed")
        if spec.pattern is not None and re.search(spec.pattern, value) is None:
            why = spec.why or f"expected text matching {spec.pattern}"
            raise ConfigError(f"{at}: got {_show(value, spec)}; {why}{_eg(spec.example)}")


# ------------------------------------------------------------------------------------------- wording
def _expected(hint: Any, spec: KeySpec) -> str:
    """What the key takes, in words: "a positive integer", "\"unsubscribe\" or \"keep\"", ..."""
    if hint is bool:
        return "true or false"
    if hint is int or hint is float:
        noun = "integer" if hint is int else "number"
        low, high, above = spec.minimum, spec.maximum, spec.exclusive_minimum
        if low is not None and high is not None:
            return f"{'an' if hint is int else 'a'} {noun} from {_num(low)} to {_num(high)}"
        if (hint is int and low == 1) or above == 0:
            return f"a positive {noun}"
        if low is not None:
            return f"{'an' if hint is int else 'a'} {noun} >= {_num(low)}"
        if above is not None:
            return f"a {noun} > {_num(above)}"
        return "an integer" if hint is int else "a number"
    if hint is str:
        return "a string"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        quoted = [_show(a) for a in args]
        return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    if origin is tuple:
        return f"a list, each item {_expected(args[0], spec)}"
    if isinstance(hint, type) and issubclass(hint, Table):
        return _table_phrase(hint)
    return "a table"


def _table_phrase(model: type[Table]) -> str:
    return f"{model.SHORTHAND_TEXT} or a table" if model.SHORTHAND else "a table"


def _example(model: type[Table]) -> str | None:
    return next((s.spec.example for s in settings_of(model) if s.attr == model.SHORTHAND), None)


def _eg(example: str | None) -> str:
    return f"; e.g. {example}" if example else ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _show(value: Any, spec: KeySpec | None = None) -> str:
    """A value as TOML writes it, clipped; a URL that may hold a password shows its scheme only."""
    if isinstance(value, str):
        if spec is not None and spec.redact:
            scheme, sep, _ = value.partition("://")
            if sep and scheme.lower() in _KNOWN_SCHEMES:  # anything else might be the password itself
                return f'"{scheme}://..." (the rest is not shown)'
            return "a value that is not shown"
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, list):
        text = "[" + ", ".join(_show(v) for v in value[:5]) + (", ..." if len(value) > 5 else "") + "]"
    elif isinstance(value, dict):
        text = "a table"
    else:
        text = type(value).__name__
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS - 3] + "..."
