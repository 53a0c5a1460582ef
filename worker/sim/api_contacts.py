"""Contacts and what hangs off them: list memberships (contactLists), field values, contact tags.

Two kinds of reader use these: segment-export's client (look a contact up by email, read its list
record, re-subscribe it with `POST /contactLists`) and any third-party tool pointed at the simulator as
a sandbox (incremental reads with `filters[updated_after]` and `orders[...]`, paged collections). Every
route declares the query parameters it implements; the middleware refuses the rest with 501.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from worker.sim import queries
from worker.sim.contact_search import ORDER_KEYS, ContactQuery, search
from worker.sim.emails import is_valid_email, normalize_email
from worker.sim.queries import PAGING, accepts
from worker.sim.records import SUBSCRIBED, UNSUBSCRIBED, Contact
from worker.sim.render import contact_json, contact_list_json, contact_tag_json, field_value_json
from worker.sim.replies import (
    BadRequestBody,
    api_base,
    as_id,
    errors,
    json_response,
    message,
    not_found,
    paging,
    read_object,
    unprocessable,
)
from worker.sim.sortedids import page
from worker.sim.state import STATE, SimState

routes = web.RouteTableDef()
P = "/api/3"

_DATE_FILTERS = ("created_after", "created_before", "updated_after", "updated_before")


def _state(request: web.Request) -> SimState:
    return request.app[STATE]


def _contact_at(request: web.Request) -> Contact | None:
    contact_id = as_id(request.match_info.get("id", ""))
    return _state(request).store.contacts.get(contact_id) if contact_id is not None else None


# Writing contacts -------------------------------------------------------------------------------------------


class _ContactInput:
    """The camelCase contact object of /contacts and /contact/sync, checked."""

    def __init__(self, raw: dict[str, Any]) -> None:
        email = raw.get("email")
        self.email = email if isinstance(email, str) else ""
        self.text: dict[str, str] = {}
        self.field_values: list[tuple[int, str]] = []
        self.error: web.Response | None = None
        if not is_valid_email(self.email):
            self.error = unprocessable("Contact Email Address is not valid.", "email_invalid",
                                       "/data/attributes/email")
            return
        for key, attr in (("firstName", "first_name"), ("lastName", "last_name"), ("phone", "phone")):
            value = raw.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                self.error = unprocessable(f"{key} must be a string.", "invalid", f"/data/attributes/{key}")
                return
            self.text[attr] = value
        values = raw.get("fieldValues")
        if values is None:
            return
        if not isinstance(values, list):
            self.error = unprocessable("fieldValues must be an array.", "invalid",
                                       "/data/attributes/fieldValues")
            return
        for item in values:
            field_id = as_id(item.get("field")) if isinstance(item, dict) else None
            value = item.get("value") if isinstance(item, dict) else None
            if field_id is None or not isinstance(value, str):
                self.error = unprocessable("Each fieldValue needs a field id and a string value.", "invalid",
                                           "/data/attributes/fieldValues")
                return
            self.field_values.append((field_id, value))


async def _contact_body(request: web.Request) -> tuple[_ContactInput | None, web.Response | None]:
    try:
        payload = await read_object(request)
    except BadRequestBody as exc:
        return None, message(400, str(exc))
    raw = payload.get("contact")
    if not isinstance(raw, dict):
        return None, unprocessable("Missing attribute", "missing", "/data/attributes/contact")
    data = _ContactInput(raw)
    return (None, data.error) if data.error is not None else (data, None)


def _refuse(state: SimState, email: str, *, new: bool) -> web.Response | None:
    """The per-contact endpoints' refusals for an excluded address or a full plan.

    Same rules as the bulk importer, so a client's per-contact path and bulk path agree on outcomes.
    """
    if state.store.is_excluded(email):
        return unprocessable("The email address is on the account's exclusion list.", "email_excluded",
                             "/data/attributes/email")
    if new and state.store.at_contact_limit():
        return unprocessable("The account has reached its contact limit.", "contact_limit",
                             "/data/attributes/email")
    return None


def _saved(request: web.Request, contact: Contact, data: _ContactInput, status: int) -> web.Response:
    store = _state(request).store
    applied = store.update_contact(contact, data.text, data.field_values)
    base = api_base(request)
    return json_response({"contact": contact_json(contact, base),
                          "fieldValues": [field_value_json(contact.fields[fid], base) for fid in applied]},
                         status=status)


@routes.post(P + "/contact/sync")
async def contact_sync(request: web.Request) -> web.Response:
    """Upsert by email: 201 when created, 200 when an existing contact was updated."""
    state = _state(request)
    data, error = await _contact_body(request)
    if data is None:
        return error or message(400, "bad request")
    email = normalize_email(data.email)
    contact = state.store.by_email.get(email)
    refusal = _refuse(state, email, new=contact is None)
    if refusal is not None:
        return refusal
    if contact is None:
        return _saved(request, state.store.create_contact(email), data, 201)
    return _saved(request, contact, data, 200)


@routes.post(P + "/contacts")
async def contact_create(request: web.Request) -> web.Response:
    state = _state(request)
    data, error = await _contact_body(request)
    if data is None:
        return error or message(400, "bad request")
    email = normalize_email(data.email)
    if email in state.store.by_email:
        return unprocessable("Email address already exists in the system", "duplicate",
                             "/data/attributes/email")
    refusal = _refuse(state, email, new=True)
    if refusal is not None:
        return refusal
    return _saved(request, state.store.create_contact(email), data, 201)


# Reading contacts -------------------------------------------------------------------------------------------


@routes.get(P + "/contacts")
@accepts(*PAGING, "email", "email_like", "listid", "status", "id_greater", "id_less",
         *(f"filters[{name}]" for name in _DATE_FILTERS), *(f"orders[{key}]" for key in ORDER_KEYS))
async def contact_search(request: web.Request) -> web.Response:
    """AC's contact listing; see `contact_search` for the semantics and the package docstring for choices."""
    store = _state(request).store
    limit, offset = paging(request)
    status = queries.integer(request, "status")
    query = ContactQuery(
        limit=limit, offset=offset,
        email=request.query.get("email"),  # an empty email matches nobody, as in AC
        email_like=queries.text(request, "email_like"),
        list_id=queries.integer(request, "listid"),
        status=None if status == -1 else status,
        id_greater=queries.integer(request, "id_greater"),
        id_less=queries.integer(request, "id_less"),
        orders=queries.orders(request, ORDER_KEYS),
    )
    for name in _DATE_FILTERS:
        setattr(query, name, queries.instant(request, f"filters[{name}]"))
    found, total = search(store, query)
    base = api_base(request)
    return json_response({"contacts": [contact_json(c, base) for c in found], "meta": {"total": str(total)}})


@routes.get(P + "/contacts/{id}")
async def contact_get(request: web.Request) -> web.Response:
    contact = _contact_at(request)
    if contact is None:
        return not_found("Subscriber", request.match_info["id"])
    base = api_base(request)
    return json_response({
        "contact": contact_json(contact, base),
        "contactLists": [contact_list_json(m, contact, base) for m in contact.lists.values()],
        "fieldValues": [field_value_json(fv, base) for fv in contact.fields.values()],
    })


@routes.delete(P + "/contacts/{id}")
async def contact_delete(request: web.Request) -> web.Response:
    """Delete a contact (AC: 200 with an empty object; 404 in lower case "No result found for contact")."""
    store = _state(request).store
    contact = _contact_at(request)
    if contact is None:
        return message(404, f"No result found for contact with id {request.match_info['id']}")
    store.delete_contact(contact)
    return json_response({})


@routes.get(P + "/contacts/{id}/contactLists")
async def contact_lists_of(request: web.Request) -> web.Response:
    """One contact's list records, oldest first, unpaged (as AC's example: no `meta`)."""
    contact = _contact_at(request)
    if contact is None:
        return not_found("Subscriber", request.match_info["id"])
    base = api_base(request)
    return json_response({"contactLists": [contact_list_json(m, contact, base) for m in contact.lists.values()]})


@routes.get(P + "/contacts/{id}/fieldValues")
async def field_values_of(request: web.Request) -> web.Response:
    contact = _contact_at(request)
    if contact is None:
        return not_found("Subscriber", request.match_info["id"])
    base = api_base(request)
    return json_response({"fieldValues": [field_value_json(fv, base) for fv in contact.fields.values()]})


@routes.get(P + "/contacts/{id}/contactTags")
async def contact_tags_of(request: web.Request) -> web.Response:
    store = _state(request).store
    contact = _contact_at(request)
    if contact is None:
        return not_found("Subscriber", request.match_info["id"])
    base = api_base(request)
    links = [store.contact_tags[link_id] for link_id in contact.tags.values()]
    return json_response({"contactTags": [contact_tag_json(link, base) for link in links]})


# Collections across the account -----------------------------------------------------------------------------


@routes.get(P + "/contactLists")
@accepts(*PAGING)
async def contact_lists_index(request: web.Request) -> web.Response:
    """Every list record of the account, by id."""
    store = _state(request).store
    limit, offset = paging(request)
    live = store.live_memberships()
    records = live[offset:offset + limit]
    base = api_base(request)
    return json_response({
        "contactLists": [contact_list_json(m, store.contacts[m.contact_id], base) for m in records],
        "meta": {"total": str(len(live))},
    })


@routes.get(P + "/fieldValues")
@accepts(*PAGING, "filters[fieldid]", "filters[val]")
async def field_values_index(request: web.Request) -> web.Response:
    """Every custom field value of the account, by id; `filters[fieldid]` and `filters[val]` (exact)."""
    store = _state(request).store
    limit, offset = paging(request)
    field_id = queries.integer(request, "filters[fieldid]")
    value = request.query.get("filters[val]")
    values = store.live_field_values()
    if field_id is not None or value is not None:
        values = [fv for fv in values
                  if (field_id is None or fv.field_id == field_id) and (value is None or fv.value == value)]
    base = api_base(request)
    return json_response({"fieldValues": [field_value_json(fv, base) for fv in values[offset:offset + limit]],
                          "meta": {"total": str(len(values))}})


@routes.get(P + "/contactTags")
@accepts(*PAGING)
async def contact_tags_index(request: web.Request) -> web.Response:
    """Every contact-tag link of the account, by id."""
    store = _state(request).store
    limit, offset = paging(request)
    chosen, total = page(store.contact_tag_ids.ids, id_greater=None, offset=offset, limit=limit)
    base = api_base(request)
    return json_response({"contactTags": [contact_tag_json(store.contact_tags[i], base) for i in chosen],
                          "meta": {"total": str(total)}})


# Changing memberships and tags ------------------------------------------------------------------------------


@routes.post(P + "/contactLists")
async def contact_list_update(request: web.Request) -> web.Response:
    """Subscribe (1) or unsubscribe (2) a contact; like AC, this CAN re-subscribe (and the stats count it).

    Subscribing an address on the exclusion list is refused with 422 `email_excluded` (AC: undocumented).
    """
    state = _state(request)
    try:
        payload = await read_object(request)
    except BadRequestBody as exc:
        return message(400, str(exc))
    raw = payload.get("contactList")
    if not isinstance(raw, dict):
        return unprocessable("Missing attribute", "missing", "/data/attributes/contactList")
    for key in ("list", "contact", "status"):
        if raw.get(key) is None:
            return unprocessable("Missing attribute", "missing", f"/data/attributes/{key}")
    list_id, contact_id, status = as_id(raw["list"]), as_id(raw["contact"]), as_id(raw["status"])
    if list_id is None or list_id not in state.settings.lists:
        return not_found("_List", raw["list"])
    contact = state.store.contacts.get(contact_id) if contact_id is not None else None
    if contact is None:
        return not_found("Subscriber", raw["contact"])
    if status not in (SUBSCRIBED, UNSUBSCRIBED):
        return unprocessable("Invalid status: use 1 (subscribed) or 2 (unsubscribed).", "invalid",
                             "/data/attributes/status")
    sourceid = _sourceid(raw.get("sourceid"))
    if isinstance(sourceid, web.Response):
        return sourceid
    if status == SUBSCRIBED and state.store.is_excluded(contact.email):
        return unprocessable("The contact's email address is on the account's exclusion list and cannot be "
                             "subscribed.", "email_excluded", "/data/attributes/contact")
    record = state.store.set_list_status(contact, list_id, status, via_api=True, sourceid=sourceid)
    base = api_base(request)
    return json_response({"contacts": [contact_json(contact, base)],
                          "contactList": contact_list_json(record, contact, base, status_as_int=True)})


def _sourceid(raw: Any) -> int | web.Response | None:
    """`sourceid` as AC documents it (an integer; 4 when re-subscribing), or a 422."""
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    return unprocessable("sourceid must be an integer (4 when re-subscribing).", "invalid",
                         "/data/attributes/sourceid")


@routes.post(P + "/contactTags")
async def contact_tag_create(request: web.Request) -> web.Response:
    """Tag a contact (idempotent: an existing link is returned again, still 201)."""
    store = _state(request).store
    try:
        payload = await read_object(request)
    except BadRequestBody as exc:
        return message(400, str(exc))
    raw = payload.get("contactTag")
    if not isinstance(raw, dict):
        return errors(422, "Missing attribute", "contactTag")
    for key in ("contact", "tag"):
        if raw.get(key) is None:
            return json_response({"errors": [{"status": 422, "title": "Missing attribute",
                                              "source": {"pointer": f"/data/attributes/{key}"}}]}, status=422)
    contact_id, tag_id = as_id(raw["contact"]), as_id(raw["tag"])
    contact = store.contacts.get(contact_id) if contact_id is not None else None
    if contact is None:
        return errors(404, "Not Found", "Contact not found")
    tag = store.tags.get(tag_id) if tag_id is not None else None
    if tag is None:
        return errors(404, "Not Found", "Tag not found")
    link, _ = store.tag_contact(contact, tag)
    return json_response({"contactTag": contact_tag_json(link, api_base(request))}, status=201)


@routes.delete(P + "/contactTags/{id}")
async def contact_tag_delete(request: web.Request) -> web.Response:
    store = _state(request).store
    link_id = as_id(request.match_info["id"])
    link = store.contact_tags.get(link_id) if link_id is not None else None
    if link is None:
        return not_found("SubscriberTag", request.match_info["id"])
    store.untag(link)
    return json_response({})

