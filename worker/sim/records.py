"""The account's records: contacts, their list memberships, field values and tags.

Plain slotted dataclasses (a million-contact benchmark holds millions of them); the `Store` keeps them
indexed and is the only code that changes them. Timestamps are aware UTC datetimes to the second
(`worker.sim.stamps` spells them as AC does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

SUBSCRIBED = 1
UNSUBSCRIBED = 2
STATUS_NAMES = {SUBSCRIBED: "subscribed", UNSUBSCRIBED: "unsubscribed"}
STATUS_BY_NAME = {name: code for code, name in STATUS_NAMES.items()}


@dataclass(frozen=True, slots=True)
class Unsubscription:
    """What AC records about who ended a subscription (issue 8: whose unsubscription it was).

    A person's own unsubscription (a campaign email's link, a form, an automation) leaves one of these
    set; one made through the API leaves all four null.
    """

    campaign: str | None = None
    message: str | None = None
    unsubreason: str | None = None
    unsubscribe_automation: str | None = None

    @property
    def by_the_person(self) -> bool:
        return any(v is not None for v in (self.campaign, self.message, self.unsubreason,
                                           self.unsubscribe_automation))


#: `SimClient.unsubscribe(how=...)`: the simulated campaign, message and automation have id 1.
UNSUBSCRIPTIONS: dict[str, Unsubscription] = {
    "campaign": Unsubscription(campaign="1", message="1"),
    "form": Unsubscription(unsubreason="I no longer want to receive these emails."),
    "automation": Unsubscription(unsubscribe_automation="1"),
    "api": Unsubscription(),
}
API_MADE = UNSUBSCRIPTIONS["api"]


@dataclass(slots=True)
class Membership:
    """A contact's record on one list (AC's contactList); kept once created, as AC keeps it."""

    id: int
    contact_id: int
    list_id: int
    status: int
    created: datetime  # created_timestamp
    updated: datetime  # udate and updated_timestamp: the last change of this record
    subscribed: datetime  # sdate: the last time the status became 1 (or the creation)
    sourceid: str = "0"
    cause: Unsubscription = API_MADE  # meaningful while status is UNSUBSCRIBED


@dataclass(slots=True)
class FieldValue:
    """One custom field value of one contact (AC's fieldValue)."""

    id: int
    contact_id: int
    field_id: int
    value: str
    cdate: datetime
    udate: datetime


@dataclass(slots=True)
class Contact:
    """One contact; `lists` maps list id -> membership, `fields` field id -> value, `tags` tag -> link."""

    id: int
    email: str
    cdate: datetime
    udate: datetime
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    customer_acct_name: str = ""
    bounced: bool = False
    fields: dict[int, FieldValue] = field(default_factory=dict)
    tags: dict[int, int] = field(default_factory=dict)  # tag id -> contactTag id
    lists: dict[int, Membership] = field(default_factory=dict)


@dataclass(slots=True)
class Tag:
    id: int
    name: str
    tag_type: str
    description: str
    cdate: datetime


@dataclass(slots=True)
class ContactTag:
    id: int
    contact_id: int
    tag_id: int
    cdate: datetime


@dataclass(slots=True)
class SimList:
    """A list of the account: its name comes from the settings, its stamps from when the store saw it."""

    id: int
    name: str
    created: datetime
    updated: datetime
