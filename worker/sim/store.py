"""The account's data: contacts, list memberships, tags, custom fields, the exclusion list.

Everything is indexed for the request paths that run at benchmark rates (~5,000 contact upserts/s):
contacts by id and by lower-cased email, list members by list and status (sorted ids, for paging), tags
by lower-cased name. Contact ids are handed out from 1 upwards and never reused; until a contact is
deleted (``DELETE /contacts/{id}``, or someone deleting it in the UI: ``/_sim``) they are contiguous, so
"all contacts" pages are computed on a `range` (``live_ids`` keeps that fast path). Memberships and field
values are kept in lists indexed by id - 1; a deleted contact's records stay there but are no longer
shown (``live_memberships``, ``live_field_values``). All access happens on the simulator's event loop
thread, so there is no locking.
"""

from __future__ import annotations

import fnmatch
from datetime import datetime
from typing import Any

from worker.sim import stamps
from worker.sim.emails import normalize_email
from worker.sim.records import (
    API_MADE,
    STATUS_NAMES,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Contact,
    ContactTag,
    FieldValue,
    Membership,
    SimList,
    Tag,
    Unsubscription,
)
from worker.sim.settings import SimSettings
from worker.sim.sortedids import SortedIds


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
        self.memberships: list[Membership] = []  # id = index + 1
        self.field_values: list[FieldValue] = []  # id = index + 1
        self.lists: dict[int, SimList] = {}
        self.tags: dict[int, Tag] = {}
        self.tags_by_name: dict[str, Tag] = {}
        self.contact_tags: dict[int, ContactTag] = {}
        self.contact_tag_ids = SortedIds()  # live links, for paging GET /contactTags
        self.exclusions: set[str] = set()
        self.exclusion_patterns: list[str] = []
        self.resubscribed = 0
        self.resubscribed_own = 0
        self.ignored_field_values = 0
        self._next_contact_id = 1
        self.deleted: set[int] = set()  # ids of deleted contacts (their records are hidden, ids never reused)
        self._next_tag_id = 1
        self._next_contact_tag_id = 1
        self.fields_by_id: dict[int, dict[str, Any]] = {}
        self.field_options: dict[int, list[dict[str, Any]]] = {}
        self.adopt(settings)

    # Settings --------------------------------------------------------------------------------------------

    def adopt(self, settings: SimSettings) -> None:
        """Follow new settings: lists, custom field definitions and the clock come from them."""
        self.settings = settings
        self._frozen = settings.frozen_time
        now = self.now()
        lists: dict[int, SimList] = {}
        for list_id, name in settings.lists.items():
            known = self.lists.get(list_id)
            if known is None:
                known = SimList(id=list_id, name=name, created=now, updated=now)
            elif known.name != name:
                known.name, known.updated = name, now
            lists[list_id] = known
        self.lists = lists
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

    def now(self) -> datetime:
        """The account's clock (UTC, whole seconds; frozen while `frozen_time` is set)."""
        return stamps.current(self._frozen)

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

    def create_contact(self, email: str, stamp: datetime | None = None) -> Contact:
        """Create a contact; the caller has checked the email, the limit and that it does not exist."""
        stamp = stamp or self.now()
        contact = Contact(id=self._next_contact_id, email=normalize_email(email), cdate=stamp, udate=stamp)
        self._next_contact_id += 1
        self.contacts[contact.id] = contact
        self.by_email[contact.email] = contact
        return contact

    def delete_contact(self, contact: Contact) -> None:
        """Delete a contact as AC does: it leaves every list, loses its tags and values, and its id is gone.

        A later import or sync of the same email creates a new contact with a new id.
        """
        self.contacts.pop(contact.id, None)
        if self.by_email.get(contact.email) is contact:
            del self.by_email[contact.email]
        for list_id, record in contact.lists.items():
            members = self.members.get(list_id)
            if members is not None:
                members.any.discard(contact.id)
                members.by_status[record.status].discard(contact.id)
        for link_id in list(contact.tags.values()):
            link = self.contact_tags.get(link_id)
            if link is not None:
                self.untag(link)
        self.deleted.add(contact.id)

    def live_ids(self) -> range | list[int]:
        """Every contact id in ascending order (a `range` while nobody was deleted)."""
        if not self.deleted:
            return range(1, self._next_contact_id)
        return sorted(self.contacts)

    def live_memberships(self) -> list[Membership]:
        """Every list record of contacts that still exist, by id."""
        if not self.deleted:
            return self.memberships
        return [m for m in self.memberships if m.contact_id not in self.deleted]

    def live_field_values(self) -> list[FieldValue]:
        if not self.deleted:
            return self.field_values
        return [fv for fv in self.field_values if fv.contact_id not in self.deleted]

    def update_contact(self, contact: Contact, text: dict[str, str], fields: list[tuple[int, str]],
                       stamp: datetime | None = None) -> list[int]:
        """Apply attributes (first_name, last_name, phone, customer_acct_name) and field values.

        Returns the field ids applied (unknown ones are dropped). The contact's `udate` moves only when
        something really changed, so incremental readers (`filters[updated_after]`) see real changes.
        """
        stamp = stamp or self.now()
        changed = False
        for attr, value in text.items():
            if getattr(contact, attr) != value:
                setattr(contact, attr, value)
                changed = True
        applied = []
        for field_id, value in fields:
            before = contact.fields.get(field_id)
            old = before.value if before is not None else None
            if self.set_field(contact, field_id, value, stamp):
                applied.append(field_id)
                changed = changed or old != value
        if changed:
            contact.udate = stamp
        return applied

    def set_field(self, contact: Contact, field_id: int, value: str, stamp: datetime | None = None) -> bool:
        """Set a custom field value; unknown field ids are dropped (and counted), as AC ignores them.

        The value's `udate` moves only when the value changes; the caller stamps the contact.
        """
        if field_id not in self.fields_by_id:
            self.ignored_field_values += 1
            return False
        found = contact.fields.get(field_id)
        if found is None:
            stamp = stamp or self.now()
            found = FieldValue(id=len(self.field_values) + 1, contact_id=contact.id, field_id=field_id,
                               value=value, cdate=stamp, udate=stamp)
            self.field_values.append(found)
            contact.fields[field_id] = found
        elif found.value != value:
            found.value, found.udate = value, stamp or self.now()
        return True

    def set_list_status(self, contact: Contact, list_id: int, status: int, *, via_api: bool,
                        cause: Unsubscription = API_MADE, sourceid: int | None = None,
                        stamp: datetime | None = None) -> Membership:
        """Move a contact to `status` on a list, keeping the record, the indexes and the counters right.

        `via_api` marks changes made through the ActiveCampaign API (as opposed to /_sim seeding or a
        simulated person's action): only those count as re-subscriptions, which is what tests watch for.
        `cause` says whose unsubscription it is (null fields: made through the API). Setting the status a
        record already has changes nothing (not even its stamps); `sourceid` is recorded when given.
        """
        record = contact.lists.get(list_id)
        if record is not None and record.status == status:
            return record
        stamp = stamp or self.now()
        members = self.members.get(list_id)
        if members is None:
            members = self.members[list_id] = ListMembers()
        if record is None:
            record = Membership(id=len(self.memberships) + 1, contact_id=contact.id, list_id=list_id,
                                status=status, created=stamp, updated=stamp, subscribed=stamp)
            self.memberships.append(record)
            contact.lists[list_id] = record
            members.any.add(contact.id)
        else:
            members.by_status[record.status].discard(contact.id)
            if status == SUBSCRIBED:
                if via_api and record.status == UNSUBSCRIBED:
                    self.resubscribed += 1
                    self.resubscribed_own += record.cause.by_the_person
                record.subscribed = stamp
            record.status, record.updated = status, stamp
        members.by_status[status].add(contact.id)
        record.cause = cause if status == UNSUBSCRIBED else API_MADE
        if sourceid is not None:
            record.sourceid = str(sourceid)
        return record

    # Tags ------------------------------------------------------------------------------------------------

    def find_tag(self, name: str) -> Tag | None:
        return self.tags_by_name.get(name.strip().lower())

    def create_tag(self, name: str, tag_type: str = "contact", description: str = "") -> Tag:
        tag = Tag(id=self._next_tag_id, name=name.strip(), tag_type=tag_type, description=description,
                  cdate=self.now())
        self._next_tag_id += 1
        self.tags[tag.id] = tag
        self.tags_by_name[tag.name.lower()] = tag
        return tag

    def tag_contact(self, contact: Contact, tag: Tag, stamp: datetime | None = None) -> tuple[ContactTag, bool]:
        """Attach a tag (idempotent); returns the link and whether it is new."""
        existing = contact.tags.get(tag.id)
        if existing is not None:
            return self.contact_tags[existing], False
        link = ContactTag(id=self._next_contact_tag_id, contact_id=contact.id, tag_id=tag.id,
                          cdate=stamp or self.now())
        self._next_contact_tag_id += 1
        self.contact_tags[link.id] = link
        self.contact_tag_ids.add(link.id)
        contact.tags[tag.id] = link.id
        return link, True

    def untag(self, link: ContactTag) -> None:
        self.contact_tags.pop(link.id, None)
        self.contact_tag_ids.discard(link.id)
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
            "status": STATUS_NAMES[contact.lists[list_id].status],
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "phone": contact.phone,
            "fields": {self.field_key(fid): fv.value for fid, fv in contact.fields.items()},
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
            "fields": {self.field_key(fid): fv.value for fid, fv in contact.fields.items()},
            "tags": [self.tags[tid].name for tid in contact.tags],
            "lists": {str(lid): STATUS_NAMES[m.status] for lid, m in contact.lists.items()},
        }
