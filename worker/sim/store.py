"""The account's data: contacts, list memberships, tags, custom fields, the exclusion list.

Everything is indexed for the request paths that run at benchmark rates (~5,000 contact upserts/s):
contacts by id and by lower-cased email, list members by list and status (sorted ids, for paging), tags
by lower-cased name. Contacts are never deleted, which is why ids are contiguous from 1 and "all
contacts" pages can be computed on a `range`. All access happens on the simulator's event loop thread,
so there is no locking.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from worker.sim.emails import normalize_email
from worker.sim.settings import SimSettings
from worker.sim.sortedids import SortedIds

SUBSCRIBED = 1
UNSUBSCRIBED = 2
STATUS_NAMES = {SUBSCRIBED: "subscribed", UNSUBSCRIBED: "unsubscribed"}
STATUS_BY_NAME = {name: code for code, name in STATUS_NAMES.items()}


def iso_now() -> str:
    """AC-style timestamp (ISO 8601 with offset); wall clock, only ever displayed."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(slots=True)
class Contact:
    """One contact; `lists` maps list id -> status (1 subscribed, 2 unsubscribed)."""

    id: int
    email: str
    cdate: str
    udate: str
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    customer_acct_name: str = ""
    bounced: bool = False
    fields: dict[int, str] = field(default_factory=dict)
    field_value_ids: dict[int, int] = field(default_factory=dict)
    tags: dict[int, int] = field(default_factory=dict)  # tag id -> contactTag id
    lists: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class Tag:
    id: int
    name: str
    tag_type: str
    description: str
    cdate: str


@dataclass(slots=True)
class ContactTag:
    id: int
    contact_id: int
    tag_id: int
    cdate: str


class ListMembers:
    """A list's members by status, each as sorted ids, plus everyone ever on the list."""

    __slots__ = ("any", "by_status")

    def __init__(self) -> None:
        self.any = SortedIds()
        self.by_status: dict[int, SortedIds] = {SUBSCRIBED: SortedIds(), UNSUBSCRIBED: SortedIds()}


class Store:
    """All of one account's objects and the primitive operations every API path shares."""

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.contacts: dict[int, Contact] = {}
        self.by_email: dict[str, Contact] = {}
        self.members: dict[int, ListMembers] = {}
        self.tags: dict[int, Tag] = {}
        self.tags_by_name: dict[str, Tag] = {}
        self.contact_tags: dict[int, ContactTag] = {}
        self.exclusions: set[str] = set()
        self.exclusion_patterns: list[str] = []
        self.resubscribed = 0
        self.ignored_field_values = 0
        self._next_contact_id = 1
        self._next_tag_id = 1
        self._next_contact_tag_id = 1
        self._next_field_value_id = 1
        self._membership_ids: dict[tuple[int, int], int] = {}
        self.fields_by_id: dict[int, dict[str, Any]] = {}
        self.field_options: dict[int, list[dict[str, Any]]] = {}
        self.adopt(settings)

    # Settings --------------------------------------------------------------------------------------------

    def adopt(self, settings: SimSettings) -> None:
        """Follow new settings: list names and custom field definitions come from them."""
        self.settings = settings
        self.fields_by_id = {f["id"]: f for f in settings.fields}
        # Option rows get stable ids in definition order: AC's fields[].options holds these ids and the
        # values live in the side-loaded "fieldOptions" array.
        self.field_options = {}
        next_option = 1
        for f in settings.fields:
            rows = []
            for order, value in enumerate(f.get("options") or [], start=1):
                rows.append({"id": str(next_option), "field": str(f["id"]), "orderid": order, "value": value,
                             "label": value, "isdefault": 0})
                next_option += 1
            self.field_options[f["id"]] = rows

    @property
    def next_contact_id(self) -> int:
        return self._next_contact_id

    def field_key(self, field_id: int) -> str:
        """How `/_sim` members name a field value: its personalization tag, else its id."""
        definition = self.fields_by_id.get(field_id)
        return definition["perstag"] if definition and definition.get("perstag") else str(field_id)

    def field_id_for(self, key: str | int) -> int | None:
        """Resolve a field by id, perstag or title (seeding convenience)."""
        if isinstance(key, int):
            return key if key in self.fields_by_id else None
        if key.isdigit() and int(key) in self.fields_by_id:
            return int(key)
        wanted = key.upper()
        for f in self.fields_by_id.values():
            if f["perstag"].upper() == wanted or f["title"].upper() == wanted:
                return int(f["id"])
        return None

    # Contacts --------------------------------------------------------------------------------------------

    def get_by_email(self, email: str) -> Contact | None:
        return self.by_email.get(normalize_email(email))

    def at_contact_limit(self) -> bool:
        """True when creating one more contact would exceed the plan's cap."""
        limit = self.settings.contact_limit
        return limit is not None and len(self.contacts) >= limit

    def create_contact(self, email: str, stamp: str | None = None) -> Contact:
        """Create a contact; the caller has checked the email, the limit and that it does not exist."""
        stamp = stamp or iso_now()
        contact = Contact(id=self._next_contact_id, email=normalize_email(email), cdate=stamp, udate=stamp)
        self._next_contact_id += 1
        self.contacts[contact.id] = contact
        self.by_email[contact.email] = contact
        return contact

    def set_field(self, contact: Contact, field_id: int, value: str) -> bool:
        """Set a custom field value; unknown field ids are dropped (and counted), as AC ignores them."""
        if field_id not in self.fields_by_id:
            self.ignored_field_values += 1
            return False
        contact.fields[field_id] = value
        if field_id not in contact.field_value_ids:
            contact.field_value_ids[field_id] = self._next_field_value_id
            self._next_field_value_id += 1
        return True

    def set_list_status(self, contact: Contact, list_id: int, status: int, *, via_api: bool) -> None:
        """Move a contact to `status` on a list, keeping the indexes and the re-subscribe counter right.

        `via_api` marks changes made through the ActiveCampaign API (as opposed to /_sim seeding or a
        simulated user action): only those count as re-subscriptions, which is what tests watch for.
        """
        old = contact.lists.get(list_id)
        if old == status:
            return
        members = self.members.get(list_id)
        if members is None:
            members = self.members[list_id] = ListMembers()
        if old is not None:
            members.by_status[old].discard(contact.id)
        else:
            members.any.add(contact.id)
        members.by_status[status].add(contact.id)
        contact.lists[list_id] = status
        if via_api and old == UNSUBSCRIBED and status == SUBSCRIBED:
            self.resubscribed += 1

    def membership_id(self, contact_id: int, list_id: int) -> int:
        """A stable id for a contact's membership of a list (AC's contactList id), assigned on first use."""
        key = (contact_id, list_id)
        found = self._membership_ids.get(key)
        if found is None:
            found = self._membership_ids[key] = len(self._membership_ids) + 1
        return found

    # Tags ------------------------------------------------------------------------------------------------

    def find_tag(self, name: str) -> Tag | None:
        return self.tags_by_name.get(name.strip().lower())

    def create_tag(self, name: str, tag_type: str = "contact", description: str = "") -> Tag:
        tag = Tag(id=self._next_tag_id, name=name.strip(), tag_type=tag_type, description=description,
                  cdate=iso_now())
        self._next_tag_id += 1
        self.tags[tag.id] = tag
        self.tags_by_name[tag.name.lower()] = tag
        return tag

    def tag_contact(self, contact: Contact, tag: Tag, stamp: str | None = None) -> tuple[ContactTag, bool]:
        """Attach a tag (idempotent); returns the link and whether it is new."""
        existing = contact.tags.get(tag.id)
        if existing is not None:
            return self.contact_tags[existing], False
        link = ContactTag(id=self._next_contact_tag_id, contact_id=contact.id, tag_id=tag.id,
                          cdate=stamp or iso_now())
        self._next_contact_tag_id += 1
        self.contact_tags[link.id] = link
        contact.tags[tag.id] = link.id
        return link, True

    def untag(self, link: ContactTag) -> None:
        self.contact_tags.pop(link.id, None)
        contact = self.contacts.get(link.contact_id)
        if contact is not None:
            contact.tags.pop(link.tag_id, None)

    # Exclusion list ----------------------------------------------------------------------------------------

    def exclude(self, email_or_pattern: str) -> None:
        """Add an address, or a '*' pattern such as '*@example.org', to the exclusion list."""
        value = normalize_email(email_or_pattern.strip())
        if "*" in value or "?" in value:
            self.exclusion_patterns.append(value)
        else:
            self.exclusions.add(value)

    def is_excluded(self, email: str) -> bool:
        if email in self.exclusions:
            return True
        return any(fnmatch.fnmatchcase(email, p) for p in self.exclusion_patterns)

    # Views -----------------------------------------------------------------------------------------------

    def member_view(self, contact: Contact, list_id: int) -> dict[str, Any]:
        """The `/_sim/lists/{id}/members` entry for one contact."""
        return {
            "id": str(contact.id),
            "status": STATUS_NAMES[contact.lists[list_id]],
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "phone": contact.phone,
            "fields": {self.field_key(fid): value for fid, value in contact.fields.items()},
            "tags": [self.tags[tid].name for tid in contact.tags],
        }

    def contact_view(self, contact: Contact) -> dict[str, Any]:
        """Everything the simulator knows about one contact (for `/_sim/contacts/{email}`)."""
        return {
            "id": str(contact.id),
            "email": contact.email,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "phone": contact.phone,
            "customer_acct_name": contact.customer_acct_name,
            "bounced": contact.bounced,
            "excluded": self.is_excluded(contact.email),
            "fields": {self.field_key(fid): value for fid, value in contact.fields.items()},
            "tags": [self.tags[tid].name for tid in contact.tags],
            "lists": {str(lid): STATUS_NAMES[status] for lid, status in contact.lists.items()},
        }
