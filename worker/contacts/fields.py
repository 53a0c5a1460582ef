"""Custom fields and tags: resolving the config's names to ActiveCampaign fields, converting values.

Why a module of its own: ActiveCampaign stores every custom field value as a string, but what that
string must look like depends on the field's type (a date field wants ``YYYY-MM-DD``, a multi-value
field ``||a||b||``, a dropdown one of its options). Sending a profile's raw value works by luck: what AC
does with a string it cannot read as the field's type is undocumented, and "silently dropped" is what
marketers least forgive. So each mapped field gets a converter, built once per run from the field's
type, and a value that cannot be converted makes only that contact ``invalid`` with a reason a person
can act on.

Choices (documented here because AC documents none of them):

- text, textarea, hidden: strings as they are; numbers as their digits; true/false as ``true``/``false``;
  lists and objects are refused (``str()`` of a list is not a value anyone wants in a text field).
- number: ints, finite floats and numeric strings (``"42"``, ``"-1.5"``, ``"1e3"``), written in plain
  positional notation; ``"1,5"`` is refused rather than guessed (decimal comma or thousands separator?).
- date: ``YYYY-MM-DD``. From ISO 8601 dates and date-times (the date as written, no time zone shift),
  epoch seconds (UTC), and, only when the mapping names it, a format like ``DD/MM/YYYY``.
- datetime: ISO 8601 in UTC, ``YYYY-MM-DDTHH:MM:SS+00:00``; inputs without an offset are taken as UTC.
- dropdown, radio: one value that must be one of the field's options (matched ignoring case and outer
  white space; the option's own spelling is sent).
- listbox, checkbox: a list, or a string split on the mapping's separator (default ``,``), or AC's own
  ``||a||b||``; every item must be an option; sent as ``||a||b||`` in the options' order, so a
  re-ordered list is not a change.
- absent, null and empty values are not sent (the field in AC is left as it is).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from worker.privacy.masking import mask_text
from worker.settings import Export, FieldMapping
from worker.settings.rules import MAX_TAG, date_format_regex

TEXT_TYPES = frozenset({"text", "textarea", "hidden"})
SINGLE_CHOICE_TYPES = frozenset({"dropdown", "radio"})
MULTI_CHOICE_TYPES = frozenset({"listbox", "checkbox"})
KNOWN_TYPES = TEXT_TYPES | SINGLE_CHOICE_TYPES | MULTI_CHOICE_TYPES | {"number", "date", "datetime"}

#: A converter returns the string to send, or None when there is nothing to send; it raises
#: FieldValueError (the reason) when the value cannot be what the field takes.
Converter = Callable[[Any], "str | None"]


class FieldValueError(ValueError):
    """A profile value that the field cannot take; the message is the reason, starting with the value.

    The field's name is left to the caller, which knows how the export named it.
    """


@dataclass(frozen=True, slots=True)
class ResolvedField:
    """A custom field of the account, as the config named it.

    ``options`` is None when AC did not tell us the field's options (then values are not checked).
    """

    key: str  # the name in exports.NAME.fields (a personalization tag or a title)
    id: int
    title: str
    perstag: str
    type: str
    options: tuple[str, ...] | None = None


# ------------------------------------------------------------------------------------------ resolving
def field_options(field: dict[str, Any]) -> tuple[str, ...] | None:
    """The option values of one field record as the client returns it.

    AC puts option *ids* in ``options`` and the values in a side-loaded ``fieldOptions`` list; the client
    attaches those values as ``option_values``. Option objects with a ``value`` inline in ``options`` are
    accepted too. None when nothing usable is there (bare ids without their side-loaded values).
    """
    values = field.get("option_values")
    if isinstance(values, list) and values:
        return tuple(str(v) for v in values)
    inline = field.get("options")
    if isinstance(inline, list) and inline and all(isinstance(o, dict) and "value" in o for o in inline):
        return tuple(str(o["value"]) for o in inline)
    return None


def _norm_name(name: str) -> str:
    """Personalization tags are shown as %TAG% in AC; people paste them that way."""
    return name.strip().strip("%").strip().lower()


def resolve_fields(export: Export, fields: Iterable[dict[str, Any]]) -> tuple[dict[str, ResolvedField], list[str]]:
    """Match every name in ``export.fields`` to exactly one field: (resolved, problems).

    A personalization tag match wins (tags are unique in an account); otherwise the title must match
    exactly one field. Problems name the config key and the fix; the caller fails the run on any.
    """
    records = [f for f in fields if isinstance(f, dict)]
    by_tag: dict[str, list[dict[str, Any]]] = {}
    by_title: dict[str, list[dict[str, Any]]] = {}
    for f in records:
        tag, title = _norm_name(str(f.get("perstag") or "")), str(f.get("title") or "").strip().lower()
        if tag:
            by_tag.setdefault(tag, []).append(f)
        if title:
            by_title.setdefault(title, []).append(f)
    resolved: dict[str, ResolvedField] = {}
    problems: list[str] = []
    where = f"exports.{export.name}.fields"
    for name in export.fields:
        want = _norm_name(name)
        matches = by_tag.get(want) or by_title.get(name.strip().lower()) or []
        if not matches:
            problems.append(f"custom field {name!r} ({where}) matches no field in ActiveCampaign by personalization "
                            f"tag or title ({len(records)} fields in the account); create it there or fix the name")
            continue
        if len(matches) > 1:
            ids = ", ".join(str(m.get("id")) for m in matches[:5])
            problems.append(f"custom field {name!r} ({where}) matches {len(matches)} fields (ids {ids}); name it by "
                            f"its personalization tag instead")
            continue
        f = matches[0]
        try:
            field_id = int(f["id"])
        except (KeyError, TypeError, ValueError):
            problems.append(f"custom field {name!r} ({where}): ActiveCampaign gave it no usable id")
            continue
        ftype = str(f.get("type") or "text").lower()
        resolved[name] = ResolvedField(name, field_id, str(f.get("title") or ""), str(f.get("perstag") or ""),
                                       ftype, field_options(f))
    return resolved, problems


# ------------------------------------------------------------------------------------------ helpers
def _show(value: Any) -> str:
    """A value for a reason: short, so a report line stays readable (and a blob is not copied around).

    Emails in it are masked: a reason is shown in dry-run samples and reports next to the row's own
    (masked or not) email, and an email in the wrong column is still a person's data.
    """
    text = mask_text(repr(value))  # masked before it is cut, so no half-email escapes the mask
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
#: Numbers already written the way we send them (no sign, leading or trailing zeros to drop): sent as is.
_CANONICAL_NUMBER = re.compile(r"-?(?:0|[1-9]\d{0,29})(?:\.\d{0,29}[1-9])?")
_EPOCH_RE = re.compile(r"[+-]?\d+(?:\.\d+)?")


def _decimal_text(d: Decimal, raw: Any) -> str:
    """Plain positional notation (``1e3`` -> ``1000``, ``2.50`` -> ``2.5``), bounded so that ``1e999999``
    cannot turn into a megabyte of zeros. No rounding: the digits given are the digits sent."""
    if not d.is_finite() or (d and not -30 <= d.adjusted() <= 30):
        raise FieldValueError(f"{_show(raw)} is out of range for a number field")
    if not d:
        return "0"
    if d == d.to_integral_value():
        return format(d.to_integral_value(), "f")
    return format(d, "f").rstrip("0").rstrip(".")


def _float_text(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        raise FieldValueError(f"{value!r} is not a finite number")
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)  # the shortest form that reads back as the same float
    return text if "e" not in text else _decimal_text(Decimal(text), value)


def _scalar_text(value: Any) -> str:
    """A string, or a number as its digits; anything else is refused."""
    cls = value.__class__
    if cls is str:
        text: str = value  # the class test above, which mypy cannot follow (``isinstance`` admits subclasses)
        return text
    if cls is int:
        return str(value)
    if cls is float:
        return _float_text(value)
    raise FieldValueError(f"{_show(value)} is {_kind(value)}, not a single text or number value")


# ------------------------------------------------------------------------------------------ text, number
def _text(value: Any) -> str | None:
    cls = value.__class__
    if cls is str:
        return value or None
    if cls is int:
        return str(value)
    if cls is float:
        return _float_text(value)
    if cls is bool:
        return "true" if value else "false"
    if value is None:
        return None
    raise FieldValueError(f"{_show(value)} is {_kind(value)}; a text field takes one text value")


def _number(value: Any) -> str | None:
    cls = value.__class__
    if cls is int:
        return str(value)
    if cls is float:
        return _float_text(value)
    if cls is str:
        s: str = value.strip()
        if not s:
            return None
        if _CANONICAL_NUMBER.fullmatch(s) is not None and s != "-0":
            return s
        if _NUMBER_RE.fullmatch(s) is None:
            raise FieldValueError(f"{_show(value)} is not a number (write it like 1234.5, without separators)")
        try:
            return _decimal_text(Decimal(s), value)
        except InvalidOperation:  # pragma: no cover - the pattern admits only what Decimal reads
            raise FieldValueError(f"{_show(value)} is not a number") from None
    if value is None:
        return None
    raise FieldValueError(f"{_show(value)} is {_kind(value)}; a number field takes one number")


# ------------------------------------------------------------------------------------------ dates
# date_format_regex (``DD/MM/YYYY`` -> a pattern) is in worker.settings.rules: the config check reads
# formats with the very same function, without importing this module.
def _by_format(pattern: re.Pattern[str], s: str) -> datetime | None:
    """The moment ``s`` names in the mapping's format (naive), or None when it is not in that format."""
    m = pattern.fullmatch(s)
    if m is None:
        return None
    g = m.groupdict()
    try:
        return datetime(int(g["Y"]), int(g["m"]), int(g["d"]), int(g.get("H") or 0), int(g.get("M") or 0),
                        int(g.get("S") or 0))
    except ValueError:  # 31/02: in the format, but no such day
        return None


def _from_epoch(value: float | int, raw: Any) -> datetime:
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise FieldValueError(f"{_show(raw)} is out of range as epoch seconds (milliseconds? divide by 1000)"
                              ) from None


def _parse_moment(value: Any, pattern: re.Pattern[str] | None, fmt: str | None) -> date | datetime:
    """A date (date-only input) or a datetime (naive = UTC) from what profiles commonly hold."""
    cls = value.__class__
    if cls is str:
        s = value.strip()
        if pattern is not None:
            moment = _by_format(pattern, s)
            if moment is not None:
                return moment
        try:
            if len(s) <= 10:
                return date.fromisoformat(s)
            return datetime.fromisoformat(s)
        except ValueError:
            pass
        if _EPOCH_RE.fullmatch(s):
            return _from_epoch(float(s) if "." in s else int(s), value)
        hint = f", epoch seconds or {fmt}" if fmt else (" or epoch seconds; for day-first dates set date_format, "
                                                         "e.g. \"DD/MM/YYYY\"")
        raise FieldValueError(f"{_show(value)} is not a date (expected ISO 8601 like 2024-03-31{hint})")
    if cls is int or cls is float:
        return _from_epoch(value, value)
    raise FieldValueError(f"{_show(value)} is {_kind(value)}; a date field takes one date")


def _date_converter(fmt: str | None) -> Converter:
    pattern = date_format_regex(fmt) if fmt else None

    def convert(value: Any) -> str | None:
        if value.__class__ is str and len(value) == 10 and value[4] == "-" and value[7] == "-":
            try:  # already YYYY-MM-DD, the common case: check it is a real day, send it as is
                date.fromisoformat(value)
                return value
            except ValueError:
                pass
        if value is None or value == "" or (value.__class__ is str and not value.strip()):
            return None
        moment = _parse_moment(value, pattern, fmt)
        day = moment.date() if isinstance(moment, datetime) else moment
        return day.isoformat()

    return convert


def _datetime_converter(fmt: str | None) -> Converter:
    pattern = date_format_regex(fmt) if fmt else None

    def convert(value: Any) -> str | None:
        cls = value.__class__
        if cls is int or cls is float:  # epoch seconds: already UTC
            return _from_epoch(value, value).isoformat(timespec="seconds")
        if value is None or value == "" or (cls is str and not value.strip()):
            return None
        moment = _parse_moment(value, pattern, fmt)
        if not isinstance(moment, datetime):
            moment = datetime(moment.year, moment.month, moment.day)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC).isoformat(timespec="seconds")
        try:
            return moment.astimezone(UTC).isoformat(timespec="seconds")
        except OverflowError:
            raise FieldValueError(f"{_show(value)} is out of range for a date-time") from None

    return convert


# ------------------------------------------------------------------------------------------ choices
class _Options:
    """Option lookup: exact spelling first, then ignoring case and outer white space."""

    def __init__(self, field: ResolvedField) -> None:
        self.field = field
        self.values = field.options or ()
        self.order = {v: i for i, v in enumerate(self.values)}
        self.folded: dict[str, str] = {}
        for v in self.values:
            self.folded.setdefault(v.strip().casefold(), v)

    def match(self, text: str) -> str:
        if text in self.order:
            return text
        hit = self.folded.get(text.strip().casefold())
        if hit is None:
            shown = ", ".join(repr(v) for v in self.values[:8]) + (", ..." if len(self.values) > 8 else "")
            raise FieldValueError(f"{_show(text)} is not an option of {self.field.type} field "
                                  f"{self.field.title or self.field.key!r} (options: {shown})")
        return hit


def _single_choice(field: ResolvedField) -> Converter:
    if not field.options:
        return _text
    options = _Options(field)

    def convert(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, list | tuple):
            raise FieldValueError(f"{_show(value)} is a list; a {field.type} field takes one value")
        if value.__class__ is bool:
            raise FieldValueError(f"{value!r} is true/false; a {field.type} field takes one of its options")
        text = _scalar_text(value)
        if not text.strip():
            return None
        return options.match(text)

    return convert


def _multi_choice(field: ResolvedField, separator: str) -> Converter:
    options = _Options(field) if field.options else None

    def convert(value: Any) -> str | None:
        if value is None:
            return None
        if value.__class__ is str:
            s = value.strip()
            if s.startswith("||") and s.endswith("||") and len(s) >= 4:
                items: list[Any] = s[2:-2].split("||")
            else:
                items = s.split(separator)
        elif isinstance(value, list | tuple):
            items = list(value)
        elif value.__class__ is int or value.__class__ is float:
            items = [value]
        else:
            raise FieldValueError(f"{_show(value)} is {_kind(value)}; a {field.type} field takes a list of "
                                  f"options")
        chosen: dict[str, None] = {}
        for item in items:
            if item is None or isinstance(item, bool | list | tuple | dict):
                raise FieldValueError(f"{_show(value)} holds {_kind(item)}; a {field.type} field takes a list "
                                      f"of options (text)")
            text = _scalar_text(item).strip()
            if not text:
                continue
            if "||" in text:
                raise FieldValueError(f"{_show(text)} contains '||', which ActiveCampaign uses between values")
            chosen[options.match(text) if options else text] = None
        if not chosen:
            return None
        picked = sorted(chosen, key=options.order.__getitem__) if options else list(chosen)
        return "||" + "||".join(picked) + "||"

    return convert


# ------------------------------------------------------------------------------------------ building
MEMO_SIZE = 4096


def memoized(convert: Callable[[Any], Any], size: int = MEMO_SIZE) -> Callable[[Any], Any]:
    """``convert`` remembering its answers for text and lists of text (the hot path's repeat values).

    Why: choice fields and tags hold a handful of distinct values across millions of profiles, so
    converting each distinct value once takes most of their cost off the hot path. Only strings and
    lists of strings are keys: ``1``, ``1.0`` and ``True`` are equal as dict keys but convert
    differently. Failures are not remembered (they raise every time, and are rare). The table is
    bounded: when full it starts over, which costs a few conversions, never memory.
    """
    cache: dict[Any, Any] = {}

    def memo(value: Any) -> Any:
        cls = value.__class__
        if cls is str:
            key: Any = value
        elif cls is list and all(item.__class__ is str for item in value):
            key = tuple(value)
        else:
            return convert(value)
        try:
            return cache[key]
        except KeyError:
            pass
        out = convert(value)
        if len(cache) >= size:
            cache.clear()
        cache[key] = out
        return out

    return memo


def make_converter(field: ResolvedField, mapping: FieldMapping | None = None) -> Converter | None:
    """The converter for one field; None means plain text (the mapper's fast path handles it)."""
    ftype = field.type
    if ftype in TEXT_TYPES or ftype not in KNOWN_TYPES:
        return None
    if ftype == "number":
        return _number
    fmt = mapping.date_format if mapping else None
    if ftype == "date":
        return _date_converter(fmt)
    if ftype == "datetime":
        return _datetime_converter(fmt)
    if ftype in SINGLE_CHOICE_TYPES:
        return memoized(_single_choice(field))
    return memoized(_multi_choice(field, mapping.separator if mapping else ","))


def convert_text(value: Any) -> str | None:
    """The text conversion, for the mapper's slow path (non-string values in a text field)."""
    return _text(value)


# ------------------------------------------------------------------------------------------ tags
def parse_tags(value: Any, separator: str) -> list[str]:
    """Tag names from a profile field: a list of text, or text split on ``separator``.

    Names are trimmed, empty ones dropped, duplicates (ignoring case, as AC matches tags) dropped. A
    number, null or nested value inside the list, or a whole value that is not text or a list, raises
    FieldValueError: a tag made of ``None`` or ``['a']`` is a data problem to report, not a tag.
    """
    if value.__class__ is str:
        items: list[Any] = value.split(separator)
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise FieldValueError(f"{_show(value)} is {_kind(value)}; expected text or a list of text")
    out: dict[str, str] = {}
    for item in items:
        if item.__class__ is not str:
            raise FieldValueError(f"{_show(value)} holds {_kind(item)}; every tag must be text")
        name = item.strip()
        if not name:
            continue
        if len(name) > MAX_TAG:
            raise FieldValueError(f"{_show(name)} is {len(name)} characters long; a tag name has at most "
                                  f"{MAX_TAG}")
        out.setdefault(name.casefold(), name)
    return list(out.values())
