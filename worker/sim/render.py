"""ActiveCampaign JSON shapes for the simulator's records.

AC's v3 API returns ids, counts and most flags as strings, uses camelCase outside bulk import, and
sends every key of a record, null or empty where unset; these renderers reproduce the key sets of the
OpenAPI examples, so a client meets the types and the nulls it will meet in production. `base` is the
API root the request came in on (e.g. "http://127.0.0.1:8088/api/3"), for the `links` AC includes.
"""

from __future__ import annotations

import re
from typing import Any

from worker.sim.records import Contact, ContactTag, FieldValue, Membership, SimList, Tag
from worker.sim.stamps import iso, plain

_CONTACT_LINKS = ("bounceLogs", "contactAutomations", "contactData", "contactGoals", "contactLists",
                  "contactLogs", "contactTags", "contactDeals", "deals", "fieldValues", "geoIps", "notes",
                  "organization", "plusAppend", "trackingLogs", "scoreValues")
_MEMBERSHIP_LINKS = ("automation", "list", "contact", "form", "autosyncLog", "campaign",
                     "unsubscribeAutomation", "message")


def _links(base: str, kind: str, ident: int, names: tuple[str, ...]) -> dict[str, str]:
    return {name: f"{base}/{kind}/{ident}/{name}" for name in names}


def contact_json(contact: Contact, base: str) -> dict[str, Any]:
    return {
        "cdate": iso(contact.cdate),
        "email": contact.email,
        "phone": contact.phone,
        "firstName": contact.first_name,
        "lastName": contact.last_name,
        "orgid": "0",
        "orgname": contact.customer_acct_name,
        "segmentio_id": "",
        "bounced_hard": "1" if contact.bounced else "0",
        "bounced_soft": "0",
        "bounced_date": None,
        "ip": "0",
        "ua": None,
        "hash": "",
        "socialdata_lastcheck": None,
        "email_local": "",
        "email_domain": "",
        "sentcnt": "0",
        "rating_tstamp": None,
        "gravatar": "0",
        "deleted": "0",
        "anonymized": "0",
        "adate": None,
        "udate": iso(contact.udate),
        "edate": None,
        "deleted_at": None,
        "created_utc_timestamp": plain(contact.cdate),
        "updated_utc_timestamp": plain(contact.udate),
        "created_timestamp": plain(contact.cdate),
        "updated_timestamp": plain(contact.udate),
        "created_by": None,
        "updated_by": None,
        "email_empty": False,
        "contactLists": [str(m.id) for m in contact.lists.values()],
        "fieldValues": [str(fv.id) for fv in contact.fields.values()],
        "links": _links(base, "contacts", contact.id, _CONTACT_LINKS),
        "id": str(contact.id),
        "organization": None,
    }


def field_value_json(value: FieldValue, base: str) -> dict[str, Any]:
    return {
        "contact": str(value.contact_id),
        "field": str(value.field_id),
        "value": value.value,
        "cdate": iso(value.cdate),
        "udate": iso(value.udate),
        "created_by": None,
        "updated_by": None,
        "links": _links(base, "fieldValues", value.id, ("owner", "field")),
        "id": str(value.id),
        "owner": str(value.contact_id),
    }


def contact_list_json(record: Membership, contact: Contact, base: str, *, status_as_int: bool = False
                      ) -> dict[str, Any]:
    """A membership; AC's POST /contactLists example sends `status` as a number, GETs as a string."""
    cause = record.cause
    return {
        "contact": str(record.contact_id),
        "list": str(record.list_id),
        "form": None,
        "seriesid": "0",
        "sdate": iso(record.subscribed),
        "udate": iso(record.updated),
        "status": record.status if status_as_int else str(record.status),
        "responder": "1",
        "sync": "0",
        "unsubreason": cause.unsubreason,
        "campaign": cause.campaign,
        "message": cause.message,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "ip4Sub": "0",
        "sourceid": record.sourceid,
        "autosyncLog": None,
        "ip4_last": "0",
        "ip4Unsub": "0",
        "created_timestamp": plain(record.created),
        "updated_timestamp": plain(record.updated),
        "created_by": None,
        "updated_by": None,
        "unsubscribeAutomation": cause.unsubscribe_automation,
        "links": _links(base, "contactLists", record.id, _MEMBERSHIP_LINKS),
        "id": str(record.id),
        "automation": None,
    }


def list_json(item: SimList, base: str) -> dict[str, Any]:
    return {
        "stringid": _slug(item.name),
        "userid": "1",
        "name": item.name,
        "cdate": iso(item.created),
        "udate": iso(item.updated),
        "created_timestamp": plain(item.created),
        "updated_timestamp": plain(item.updated),
        "p_use_tracking": "1",
        "p_use_analytics_read": "0",
        "p_use_analytics_link": "0",
        "p_use_twitter": "0",
        "p_use_facebook": "0",
        "p_embed_image": "1",
        "p_use_captcha": "1",
        "send_last_broadcast": "0",
        "private": "0",
        "analytics_domains": None,
        "analytics_source": "",
        "analytics_ua": "",
        "twitter_token": "",
        "twitter_token_secret": "",
        "facebook_session": None,
        "carboncopy": None,
        "subscription_notify": None,
        "unsubscription_notify": None,
        "require_name": "0",
        "get_unsubscribe_reason": "0",
        "to_name": "Subscriber",
        "optinoptout": "1",
        "sender_name": "",
        "sender_addr1": "",
        "sender_addr2": "",
        "sender_city": "",
        "sender_state": "",
        "sender_zip": "",
        "sender_country": "",
        "sender_phone": "",
        "sender_url": "",
        "sender_reminder": "",
        "fulladdress": "",
        "optinmessageid": "0",
        "optoutconf": "0",
        "deletestamp": None,
        "links": _links(base, "lists", item.id, ("contactGoalLists", "user", "addressLists")),
        "id": str(item.id),
        "user": "1",
    }


def field_json(options: list[dict[str, Any]], definition: dict[str, Any], order: int, base: str
               ) -> dict[str, Any]:
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
        "options": [row["id"] for row in options],
        "relations": [],
        "links": _links(base, "fields", definition["id"], ("options", "relations")),
    }


def tag_json(tag: Tag, base: str) -> dict[str, Any]:
    return {"tagType": tag.tag_type, "tag": tag.name, "description": tag.description, "cdate": iso(tag.cdate),
            "links": _links(base, "tags", tag.id, ("contactGoalTags",)), "id": str(tag.id)}


def contact_tag_json(link: ContactTag, base: str) -> dict[str, Any]:
    return {
        "contact": str(link.contact_id),
        "tag": str(link.tag_id),
        "cdate": iso(link.cdate),
        "created_timestamp": plain(link.cdate),
        "updated_timestamp": plain(link.cdate),
        "created_by": None,
        "updated_by": None,
        "links": _links(base, "contactTags", link.id, ("contact", "tag")),
        "id": str(link.id),
    }


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "list"
