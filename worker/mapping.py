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


def mask_email(email: str) -> str:
    """``a***@example.com``: enough for a person to recognise a row in logs, not enough to leak it."""
    local, sep, domain = email.partition("@")
    if not sep:
        return (email[:1] + "***") if email else "***"
    return f"{local[:1]}***@{domain}"


@dataclass(slots=True)
class Mapped:
    """One valid contact: its email, the JSON bytes of the contact object, and their fingerprint."""

    email: str
    contact: dict[str, Any]
    body: bytes
    fingerprint: str


@dataclass
class Mapper:
    """Maps profiles for one export. Build it once per run (custom field ids resolved beforehand)."""

    export: Export
    field_ids: dict[str, int] = field(default_factory=dict)  # personalization tag/title -> AC field id

    def __post_init__(self) -> None:
        m = self.export.mapping
        self._email_key = m["email"]
        self._names = [(ac, m[ours]) for ours, ac in (("first_name", "first_name"), ("last_name", "last_name"),
                                                      ("phone", "phone")) if ours in m]
        self._fields = [(self.field_ids[tag], src) for tag, src in self.export.fields.items()
                        if tag in self.field_ids]
        self._subscribe = [{"listid": self.export.list_id}]
        self._tags = list(self.export.tags)
        self._exclude = self.export.exclude_automations

    def map(self, profile: dict[str, Any]) -> Mapped | str:
        """The contact, or the reason the profile cannot be sent (counted ``invalid``).

        Written for speed (it runs once per profile): local names, exact-type checks, no helpers.
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
            for field_id, src in self._fields:
                value = profile.get(src)
                if value is None or value == "":
                    continue
                values.append({"id": field_id, "value": value if isinstance(value, str) else str(value)})
            if values:
                contact["fields"] = values
        if self._tags:
            contact["tags"] = self._tags
        contact["subscribe"] = self._subscribe
        if self._exclude:
            contact["exclude_automations"] = True
        body = _dumps(contact)
        return Mapped(email, contact, body, _blake2b(body, digest_size=8).hexdigest())

    def leaver(self, email: str) -> tuple[dict[str, Any], bytes]:
        """The contact object that unsubscribes a leaver from this export's list (and nothing else)."""
        contact = {"email": email, "unsubscribe": [{"listid": self.export.list_id}]}
        return contact, orjson.dumps(contact)
