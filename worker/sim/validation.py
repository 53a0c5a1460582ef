"""Whole-request validation of `POST /import/bulk_import`, done before anything is queued.

AC rejects the entire request (HTTP 400, nothing queued) when any contact is malformed, and lists the
offenders by 1-based position. Only a *missing* email is not a request error: that contact is queued and
reported later in the batch's `failure` list. Checks are strict about types because a client that sends
numbers where AC documents strings works by luck on the real service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from worker.sim.emails import is_valid_email, normalize_email

MAX_CONTACTS = 250
MAX_BODY_BYTES = 399_999
VALIDATION_MESSAGE = (
    "JSON payload did not pass validation. Please fix failure Reasons and retry. "
    "The import was not queued for processing."
)
_TEXT_KEYS = ("first_name", "last_name", "phone", "customer_acct_name")


@dataclass(slots=True)
class ImportContact:
    """One validated contact of a bulk import; `None` text means "leave the stored value alone"."""

    email: str | None  # lower-cased; None when the request had no email
    sent_email: str  # as sent, for the failure list ("" when missing)
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    customer_acct_name: str | None = None
    fields: list[tuple[int, str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    subscribe: list[int] = field(default_factory=list)
    unsubscribe: list[int] = field(default_factory=list)


class RequestInvalid(Exception):
    """The request as a whole is unusable; `reasons` go into `failureReasons` of a 400."""

    def __init__(self, reasons: list[Any]) -> None:
        super().__init__("; ".join(str(r) for r in reasons))
        self.reasons = reasons


def envelope_contacts(payload: Any) -> list[Any]:
    """The `contacts` array of a bulk import body, or RequestInvalid describing what is wrong."""
    if not isinstance(payload, dict):
        raise RequestInvalid(["The request body must be a JSON object with a 'contacts' array."])
    contacts = payload.get("contacts")
    if not isinstance(contacts, list) or not contacts:
        raise RequestInvalid(["Field 'contacts' is required and must be a non-empty array."])
    if len(contacts) > MAX_CONTACTS:
        raise RequestInvalid([
            f"Up to {MAX_CONTACTS} contacts may be included in a single request; "
            f"this one holds {len(contacts)}."
        ])
    return contacts


def validate_callback(raw: Any) -> dict[str, Any] | None:
    """The optional `callback` object, normalised; RequestInvalid when present but malformed."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("url"), str) or not raw["url"].strip():
        raise RequestInvalid(["Field 'callback' must be an object with a non-empty 'url' string."])
    request_type = str(raw.get("requestType", "POST")).upper()
    if request_type not in ("GET", "POST"):
        raise RequestInvalid(["Field 'callback.requestType' must be 'GET' or 'POST'."])
    pairs: dict[str, list[tuple[str, str]]] = {}
    for name in ("params", "headers"):
        items = raw.get(name) or []
        if not isinstance(items, list) or not all(
            isinstance(i, dict) and isinstance(i.get("key"), str) and isinstance(i.get("value", ""), str)
            for i in items
        ):
            raise RequestInvalid([f"Field 'callback.{name}' must be an array of {{key, value}} strings."])
        pairs[name] = [(i["key"], i.get("value", "")) for i in items if i["key"]]
    detailed = raw.get("detailed_results", "true")
    return {
        "url": raw["url"].strip(),
        "requestType": request_type,
        "detailed_results": str(detailed).lower() in ("true", "1"),
        "params": pairs["params"],
        "headers": pairs["headers"],
    }


def validate_contacts(raw_contacts: list[Any], known_lists: set[int] | dict[int, str]) -> list[ImportContact]:
    """Check every contact; all problems are reported at once (1-based `contact` index), like AC."""
    out: list[ImportContact] = []
    reasons: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_contacts, start=1):
        try:
            out.append(_one_contact(raw, known_lists))
        except ValueError as exc:
            reasons.append({"contact": index, "failureReason": str(exc)})
    if reasons:
        raise RequestInvalid(reasons)
    return out


def _one_contact(raw: Any, known_lists: set[int] | dict[int, str]) -> ImportContact:
    if not isinstance(raw, dict):
        raise ValueError("Contact must be a JSON object")
    email = raw.get("email")
    if email is None or email == "":
        contact = ImportContact(email=None, sent_email="")
    elif not isinstance(email, str) or not is_valid_email(email):
        raise ValueError("Field 'email' incorrect format")
    else:
        contact = ImportContact(email=normalize_email(email), sent_email=email)
    for key in _TEXT_KEYS:
        value = raw.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise ValueError(f"Field '{key}' must be a string")
            setattr(contact, key, value)
    tags = raw.get("tags")
    if tags is not None:
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ValueError("Field 'tags' must be an array of strings")
        contact.tags = [t for t in tags if t.strip()]
    fields = raw.get("fields")
    if fields is not None:
        if not isinstance(fields, list):
            raise ValueError("Field 'fields' must be an array of {id, value} objects")
        for item in fields:
            if not isinstance(item, dict) or "id" not in item or "value" not in item:
                raise ValueError("Field 'fields' must be an array of {id, value} objects")
            field_id = _as_id(item["id"])
            if field_id is None:
                raise ValueError("Field 'fields.id' must be an integer")
            if not isinstance(item["value"], str):
                raise ValueError(f"Field 'fields.value' for field {field_id} must be a string")
            contact.fields.append((field_id, item["value"]))
    for key in ("subscribe", "unsubscribe"):
        items = raw.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            raise ValueError(f"Field '{key}' must be an array of {{listid}} objects")
        ids: list[int] = []
        for item in items:
            list_id = _as_id(item.get("listid")) if isinstance(item, dict) else None
            if list_id is None:
                raise ValueError(f"Field '{key}' must be an array of {{listid}} objects with integer ids")
            if list_id not in known_lists:
                raise ValueError(f"Field '{key}' references list {list_id}, which does not exist")
            ids.append(list_id)
        setattr(contact, key, ids)
    exclude = raw.get("exclude_automations")
    if exclude is not None and not isinstance(exclude, bool):
        raise ValueError("Field 'exclude_automations' must be a boolean")
    return contact


def _as_id(value: Any) -> int | None:
    """Ids as AC's PHP accepts them: an integer or a string of digits (the bulk spec shows both)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.isdigit() and value.isascii():
        return int(value) if int(value) > 0 else None
    return None
