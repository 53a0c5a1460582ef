"""Profile -> ActiveCampaign contact, on the hot path of every run.

A mapper turns one snapshot profile (any dict) into the contact object that the bulk importer takes,
plus the fingerprint the diff compares. Why the fingerprint is taken over the serialized contact: it
covers every value we send (names, phone, custom fields, tags, the list), so any change to what AC
would receive is a change in the diff, and nothing else is. One ``orjson.dumps`` per profile gives
both the fingerprint and the contact's byte size for batching; nothing per-contact is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any

import orjson

from worker.contacts.fields import (
    Converter,
    FieldValueError,
    ResolvedField,
    convert_text,
    make_converter,
    memoized,
    parse_tags,
)
from worker.privacy.masking import mask_email as mask_email  # re-exported: callers import it from here
from worker.settings import Export

# ActiveCampaign's rule: >= 1 character before '@'; exactly one '@'; none of "(),:;<>@[\] (nor white
# space) in the local part; a domain whose last label is at least two letters after a '.'.
_LOCAL = r'[^"(),:;<>@\[\\\]\s]+'
_DOMAIN = r'[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.(?:[a-z]{2,}|xn--[a-z0-9-]+)'
EMAIL_RE = re.compile(f"{_LOCAL}@{_DOMAIN}")
#: The rule in two halves (the local part has no '@', so it ends at the first one): a run meets few
#: distinct domains, so the mapper remembers each domain's verdict and checks only the local part.
_local_ok = re.compile(_LOCAL).fullmatch
_domain_ok = re.compile(_DOMAIN).fullmatch
_DOMAIN_MEMO = 65_536  # distinct domains remembered per mapper
_dumps = orjson.dumps
_blake2b = blake2b

MAX_NAME = 255  # AC truncates silently beyond this; we would rather report


def profile_columns(export: Export) -> frozenset[str]:
    """Every profile field the export reads: what a columnar snapshot (Parquet) needs to read, and no more."""
    sources = {*export.mapping.values(), *(f.source for f in export.fields.values())}
    if export.tag_field is not None:
        sources.add(export.tag_field)
    return frozenset(sources)


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


@dataclass(slots=True)
class MappedPage:
    """A page's valid contacts as parallel lists (emails[i] is contacts[i]'s), and its invalid rows."""

    emails: list[str] = field(default_factory=list)
    contacts: list[dict[str, Any]] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # bytes of each contact's JSON
    fingerprints: list[str] = field(default_factory=list)
    invalid: list[tuple[int, str | None, str]] = field(default_factory=list)  # (line, raw email if text, why)


@dataclass
class Mapper:
    """Maps profiles for one export. Build it once per run, with the custom fields resolved beforehand.

    ``resolved`` (from ``worker.contacts.fields.resolve_fields``) gives each field's id and type, so values are
    converted to what the type takes. A configured field that is not resolved is a bug in the caller,
    not something to skip: nothing is ever dropped silently.
    """

    export: Export
    resolved: dict[str, ResolvedField] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = self.export.mapping
        self._email_key = m["email"]
        self._names = [(ac, m[ours]) for ours, ac in (("first_name", "first_name"), ("last_name", "last_name"),
                                                      ("phone", "phone")) if ours in m]
        self._fields: list[tuple[int, str, Converter | None, str]] = []
        self.field_names: dict[int, str] = {}  # AC field id -> the export's name for it (dry-run samples)
        for key, source in self.export.fields.items():
            if key not in self.resolved:
                raise ValueError(f"custom field {key!r} of export {self.export.name} was not resolved to an id")
            rf = self.resolved[key]
            field_id, convert = rf.id, make_converter(rf, source)
            self._fields.append((field_id, source.source, convert, key))
            self.field_names[field_id] = key
        self._subscribe = [{"listid": self.export.list_id}]
        self._tags = list(self.export.tags)
        self._tags_folded = {t.casefold() for t in self._tags}
        self._tag_field = self.export.tag_field
        self._tag_separator = self.export.tag_separator
        self._profile_tags = memoized(self._merge_tags)
        self._exclude = self.export.exclude_automations
        self._domains: dict[str, bool] = {}
        self._core = self._compile()

    def map(self, profile: dict[str, Any]) -> Mapped | str:
        """The contact, or the reason the profile cannot be sent (counted ``invalid``)."""
        got = self._core(profile)
        if isinstance(got, str):
            return got
        email, contact, body = got
        return Mapped(email, contact, body, _blake2b(body, digest_size=8).hexdigest())

    def map_page(self, rows: list[tuple[int, dict[str, Any]]]) -> MappedPage:
        """``map`` for a page of (line, profile) rows, as parallel lists: no object per contact.

        Why: the planner runs this for every profile of every run; one call per page keeps the loop's
        names local and skips building a ``Mapped`` per contact (the same mapping, the same reasons).
        """
        core, b2, email_field = self._core, _blake2b, self._email_key
        page = MappedPage()
        email_add, contact_add, size_add = page.emails.append, page.contacts.append, page.sizes.append
        fp_add, invalid_add = page.fingerprints.append, page.invalid.append
        for line, profile in rows:
            got = core(profile)
            if isinstance(got, str):
                raw = profile.get(email_field)
                invalid_add((line, raw if isinstance(raw, str) else None, got))
                continue
            email, contact, body = got
            email_add(email)
            contact_add(contact)
            size_add(len(body))
            fp_add(b2(body, digest_size=8).hexdigest())
        return page

    def _compile(self) -> Callable[[dict[str, Any]], tuple[str, dict[str, Any], bytes] | str]:
        """The per-profile mapping with every setting bound to a local name.

        Written for speed (it runs once per profile): locals instead of attribute lookups, exact-type
        checks, no helpers on the common path; conversions run only for typed custom fields, errors only
        for bad values. Returns (email, contact, its JSON bytes) or the reason the profile is invalid.
        """
        email_field, names, fields = self._email_key, tuple(self._names), tuple(self._fields)
        static_tags, tag_field, profile_tags = self._tags, self._tag_field, self._profile_tags
        subscribe, exclude, dumps = self._subscribe, self._exclude, _dumps
        local_ok, domain_ok, domains = _local_ok, _domain_ok, self._domains
        missing = f"missing email (profile field {email_field!r} is empty or absent)"
        not_text = f"email field {email_field!r} is not a string"
        malformed = "malformed email (fails ActiveCampaign's email format rule)"

        def core(profile: dict[str, Any]) -> tuple[str, dict[str, Any], bytes] | str:
            raw = profile.get(email_field)
            if raw.__class__ is not str:
                return missing if raw is None else not_text
            email = raw.strip().lower()
            if not email:
                return missing
            local, _, domain = email.partition("@")
            good = domains.get(domain)
            if good is None:
                good = domain_ok(domain) is not None
                if len(domains) < _DOMAIN_MEMO:
                    domains[domain] = good
            if not good or local_ok(local) is None:
                return malformed
            contact: dict[str, Any] = {"email": email}
            for ac_key, src in names:
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
            if fields:
                values = []
                for field_id, src, convert, key in fields:
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
            tags = static_tags
            if tag_field is not None:
                value = profile.get(tag_field)
                if value is not None and value != "":
                    try:
                        tags = profile_tags(value)
                    except FieldValueError as exc:
                        return f"tag field {tag_field!r}: {exc}"
            if tags:
                contact["tags"] = tags
            contact["subscribe"] = subscribe
            if exclude:
                contact["exclude_automations"] = True
            return email, contact, dumps(contact)

        return core

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
