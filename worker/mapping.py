"""Profile -> ActiveCampaign contact, on the hot path of every run.

A mapper turns one snapshot profile (any dict) into the contact object that the bulk importer takes,
plus the fingerprint the diff compares. Why the fingerprint is taken over the serialized contact: it
covers every value we send (names, phone, custom fields, tags, the list), so any change to what AC
would receive is a change in the diff, and nothing else is. One ``orjson.dumps`` per profile gives
both the fingerprint and the contact's byte size for batching; nothing per-contact is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any

import orjson

from worker.config import Export
from worker.fields import (
    Converter,
    FieldValueError,
    ResolvedField,
    convert_text,
    make_converter,
    memoized,
    parse_tags,
)
from worker.masking import mask_email as mask_email  # re-exported: callers import it from here

# ActiveCampaign's rule: >= 1 character before '@'; exactly one '@'; none of "(),:;<>@[\] (nor white
# space) in the local part; a domain whose last label is at least two letters after a '.'.
EMAIL_RE = re.compile(r'[^"(),:;<>@\[\\\]\s]+@[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.(?:[a-z]{2,}|xn--[a-z0-9-]+)')
_email_ok = EMAIL_RE.fullmatch
_dumps = orjson.dumps
_blake2b = blake2b

MAX_NAME = 255  # AC truncates silently beyond this; we would rather report


def normalize_email(value: object) -> str | None:
    """Trimmed, lower-cased email, or None when it is not a string."""
    if not isinstance(value, str):
        return None
    return value.strip().lower()


def valid_email(email: str) -> bool:
    return EMAIL_RE.fullmatch(email) is not None


@dataclass(slots=True)
class Mapped:
    """One valid contact: its email, the JSON bytes of the contact object, and their fingerprint."""

    email: str
    contact: dict[str, Any]
    body: bytes
    fingerprint: str


@dataclass
class Mapper:
    """Maps profiles for one export. Build it once per run, with the custom fields resolved beforehand.

    ``resolved`` (from ``worker.fields.resolve_fields``) gives each field's id and type, so values are
    converted to what the type takes; ``field_ids`` is the older form (id only: every field is text).
    A configured field that is in neither is a bug in the caller, not something to skip: nothing is
    ever dropped silently.
    """

    export: Export
    field_ids: dict[str, int] = field(default_factory=dict)  # personalization tag/title -> AC field id
    resolved: dict[str, ResolvedField] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = self.export.mapping
        self._email_key = m["email"]
        self._names = [(ac, m[ours]) for ours, ac in (("first_name", "first_name"), ("last_name", "last_name"),
                                                      ("phone", "phone")) if ours in m]
        self._fields: list[tuple[int, str, Converter | None, str]] = []
        self.field_names: dict[int, str] = {}  # AC field id -> the export's name for it (dry-run samples)
        for key, source in self.export.fields.items():
            if key in self.resolved:
                rf = self.resolved[key]
                field_id, convert = rf.id, make_converter(rf, source)
            elif key in self.field_ids:
                field_id, convert = self.field_ids[key], None
            else:
                raise ValueError(f"custom field {key!r} of export {self.export.name} was not resolved to an id")
            self._fields.append((field_id, source.source, convert, key))
            self.field_names[field_id] = key
        self._subscribe = [{"listid": self.export.list_id}]
        self._tags = list(self.export.tags)
        self._tags_folded = {t.casefold() for t in self._tags}
        self._tag_field = self.export.tag_field
        self._tag_separator = self.export.tag_separator
        self._profile_tags = memoized(self._merge_tags)
        self._exclude = self.export.exclude_automations

    def map(self, profile: dict[str, Any]) -> Mapped | str:
        """The contact, or the reason the profile cannot be sent (counted ``invalid``).

        Written for speed (it runs once per profile): local names, exact-type checks, no helpers on the
        common path; conversions run only for typed custom fields, errors only for bad values.
        """
        raw = profile.get(self._email_key)
        if raw.__class__ is not str:
            if raw is None:
                return f"missing email (profile field {self._email_key!r} is empty or absent)"
            return f"email field {self._email_key!r} is not a string"
        email = raw.strip().lower()
        if not email:
            return f"missing email (profile field {self._email_key!r} is empty or absent)"
        if _email_ok(email) is None:
            return "malformed email (fails ActiveCampaign's email format rule)"
        contact: dict[str, Any] = {"email": email}
        for ac_key, src in self._names:
            value = profile.get(src)
            if value is None:
                continue
            if value.__class__ is not str:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    return f"{src!r} must be text, got {type(value).__name__}"
                value = str(value)
            value = value.strip()
            if value:
                if len(value) > MAX_NAME:
                    return f"{src!r} is longer than {MAX_NAME} characters"
                contact[ac_key] = value
        if self._fields:
            values = []
            for field_id, src, convert, key in self._fields:
                value = profile.get(src)
                if value is None:
                    continue
                try:
                    if convert is not None:
                        value = convert(value)
                    elif value.__class__ is not str:
                        value = convert_text(value)
                except FieldValueError as exc:
                    return f"custom field {key} (profile field {src!r}): {exc}"
                if value:
                    values.append({"id": field_id, "value": value})
            if values:
                contact["fields"] = values
        tags = self._tags
        if self._tag_field is not None:
            value = profile.get(self._tag_field)
            if value is not None and value != "":
                try:
                    tags = self._profile_tags(value)
                except FieldValueError as exc:
                    return f"tag field {self._tag_field!r}: {exc}"
        if tags:
            contact["tags"] = tags
        contact["subscribe"] = self._subscribe
        if self._exclude:
            contact["exclude_automations"] = True
        body = _dumps(contact)
        return Mapped(email, contact, body, _blake2b(body, digest_size=8).hexdigest())

    def _merge_tags(self, value: Any) -> list[str]:
        """The export's static tags plus the profile's (trimmed, deduplicated ignoring case, as AC does).

        Memoized per distinct value, so the list returned may be shared by many contacts: never mutated.
        """
        found = parse_tags(value, self._tag_separator)
        if not found:
            return self._tags
        folded = self._tags_folded
        return [*self._tags, *(t for t in found if t.casefold() not in folded)]

    def leaver(self, email: str) -> tuple[dict[str, Any], bytes]:
        """The contact object that unsubscribes a leaver from this export's list (and nothing else)."""
        contact = {"email": email, "unsubscribe": [{"listid": self.export.list_id}]}
        return contact, orjson.dumps(contact)
