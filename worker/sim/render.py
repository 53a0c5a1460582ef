"""ActiveCampaign JSON shapes for the simulator's objects.

AC's v3 API returns ids, counts and most flags as strings and uses camelCase outside bulk import; these
renderers reproduce that (with the subset of attributes a sync client could read) so the client is
exercised against the same types it will meet in production.
"""

from __future__ import annotations

import re
from typing import Any

from worker.sim.store import Contact, ContactTag, Store, Tag


def contact_json(contact: Contact) -> dict[str, Any]:
    return {
        "id": str(contact.id),
        "email": contact.email,
        "firstName": contact.first_name,
        "lastName": contact.last_name,
        "phone": contact.phone,
        "orgid": "0",
        "orgname": contact.customer_acct_name,
        "cdate": contact.cdate,
        "udate": contact.udate,
        "deleted": "0",
        "anonymized": "0",
        "bounced_hard": "1" if contact.bounced else "0",
        "bounced_soft": "0",
        "email_empty": False,
        "fieldValues": [str(contact.field_value_ids[f]) for f in contact.fields
                        if f in contact.field_value_ids],
    }


def field_value_json(contact: Contact, field_id: int) -> dict[str, Any]:
    value_id = str(contact.field_value_ids.get(field_id, 0))
    return {
        "id": value_id,
        "contact": str(contact.id),
        "owner": str(contact.id),
        "field": str(field_id),
        "value": contact.fields.get(field_id),
        "cdate": contact.cdate,
        "udate": contact.udate,
    }


def contact_list_json(store: Store, contact: Contact, list_id: int, *, status_as_int: bool = False
                      ) -> dict[str, Any]:
    """A membership; AC's POST /contactLists example sends `status` as a number, GETs as a string."""
    status = contact.lists[list_id]
    return {
        "id": str(store.membership_id(contact.id, list_id)),
        "contact": str(contact.id),
        "list": str(list_id),
        "status": status if status_as_int else str(status),
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "sdate": contact.udate,
        "udate": contact.udate,
        "sourceid": "0",
    }


def list_json(list_id: int, name: str) -> dict[str, Any]:
    return {
        "id": str(list_id),
        "stringid": _slug(name),
        "name": name,
        "userid": "1",
        "user": "1",
        "private": "0",
        "sender_url": "",
        "sender_reminder": "",
        "cdate": "2020-01-01T00:00:00+00:00",
        "udate": None,
    }


def field_json(store: Store, definition: dict[str, Any], order: int) -> dict[str, Any]:
    return {
        "id": str(definition["id"]),
        "title": definition["title"],
        "descript": None,
        "type": definition["type"],
        "isrequired": "0",
        "perstag": definition["perstag"],
        "defval": None,
        "show_in_list": "0",
        "visible": "1",
        "ordernum": str(order),
        "options": [row["id"] for row in store.field_options.get(definition["id"], [])],
        "relations": [],
    }


def tag_json(tag: Tag) -> dict[str, Any]:
    return {"id": str(tag.id), "tag": tag.name, "tagType": tag.tag_type, "description": tag.description,
            "cdate": tag.cdate}


def contact_tag_json(link: ContactTag) -> dict[str, Any]:
    return {"id": str(link.id), "contact": str(link.contact_id), "tag": str(link.tag_id), "cdate": link.cdate}


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "list"
