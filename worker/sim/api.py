"""The ActiveCampaign v3 routes the segment-export client uses, under `/api/3/`.

Auth, rate limiting and logging happen in `middleware`; these handlers only implement each endpoint's
semantics and AC's response shapes. Undocumented behaviour is chosen here and listed in the package
docstring (`worker.sim.__init__`).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from worker.sim.emails import is_valid_email, normalize_email
from worker.sim.imports import Batch
from worker.sim.render import (
    contact_json,
    contact_list_json,
    contact_tag_json,
    field_json,
    field_value_json,
    list_json,
    tag_json,
)
from worker.sim.replies import (
    LOG_ENTRY,
    BadRequestBody,
    as_id,
    errors,
    json_response,
    message,
    not_found,
    paging,
    query_int,
    read_body,
    read_object,
    unprocessable,
)
from worker.sim.sortedids import page
from worker.sim.state import STATE, SimState
from worker.sim.store import SUBSCRIBED, UNSUBSCRIBED, Contact
from worker.sim.validation import (
    MAX_BODY_BYTES,
    VALIDATION_MESSAGE,
    RequestInvalid,
    envelope_contacts,
    validate_callback,
    validate_contacts,
)

routes = web.RouteTableDef()
P = "/api/3"


def _state(request: web.Request) -> SimState:
    return request.app[STATE]


def _bad_body(exc: BadRequestBody) -> web.Response:
    return message(400, str(exc))


# Bulk import ------------------------------------------------------------------------------------------------


@routes.post(P + "/import/bulk_import")
async def bulk_import(request: web.Request) -> web.Response:
    """Validate the whole request, apply the bulk per-minute window, queue one batch."""
    state = _state(request)
    entry = request[LOG_ENTRY]
    body = await read_body(request)
    if len(body) > MAX_BODY_BYTES:
        return json_response({
            "success": 0,
            "message": f"Request body too large: {len(body):,} bytes; at most {MAX_BODY_BYTES:,} bytes are "
                       "accepted. The import was not queued for processing.",
            "failureReasons": [f"The serialized request must be at most {MAX_BODY_BYTES:,} bytes."],
        }, status=413)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _invalid(["The request body is not valid JSON."])
    try:
        raw_contacts = envelope_contacts(payload)
        entry["contacts"] = len(raw_contacts)
        callback = validate_callback(payload.get("callback"))
    except RequestInvalid as exc:
        return _invalid(exc.reasons)

    window = state.limits.bulk_window(len(raw_contacts))
    if not window.try_acquire(entry["at"]):
        state.counters["bulk_rate_limited"] += 1
        per = "minute" if abs(window.window - 60.0) < 1e-6 else f"{window.window:g} seconds"
        kind = "single-contact imports" if len(raw_contacts) == 1 else "imports"
        return json_response({
            "success": 0,
            "message": "Rate limit exceeded.",
            "failureReasons": [f"Up to {window.limit} {kind} may be requested per {per}. Please batch "
                               "contacts into larger requests, or retry this request in a minute."],
        }, status=400)

    settings = state.settings
    try:
        contacts = validate_contacts(raw_contacts, settings.lists)
    except RequestInvalid as exc:
        return _invalid(exc.reasons)
    doomed = settings.batch_failure_rate > 0 and state.rng.random() < settings.batch_failure_rate
    batch = state.imports.accept(contacts, callback, now=entry["at"], delay=settings.processing_delay,
                                 doomed=doomed)
    state.wakeup.set()
    return json_response({"success": 1, "queued_contacts": batch.count, "batchId": batch.id,
                          "message": "Contact import queued"})


def _invalid(reasons: list[Any]) -> web.Response:
    return json_response({"success": 0, "message": VALIDATION_MESSAGE, "failureReasons": reasons}, status=400)


@routes.get(P + "/import/info")
async def import_info(request: web.Request) -> web.Response:
    state = _state(request)
    batch_id = request.query.get("batchId", "").strip()
    if not batch_id:
        return json_response({"success": 0, "message": "'batchId' is a required field."}, status=400)
    batch: Batch | None = state.imports.batches.get(batch_id)
    if batch is None:
        return not_found("Import", batch_id)
    return json_response(batch.info(request[LOG_ENTRY]["at"]))


@routes.get(P + "/import/bulk_import")
async def bulk_import_summary(request: web.Request) -> web.Response:
    return json_response(_state(request).imports.summary())


# Contacts ---------------------------------------------------------------------------------------------------


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


def _apply_input(state: SimState, contact: Contact, data: _ContactInput) -> list[int]:
    for attr, value in data.text.items():
        setattr(contact, attr, value)
    applied = [fid for fid, value in data.field_values if state.store.set_field(contact, fid, value)]
    return applied


async def _contact_body(request: web.Request) -> tuple[_ContactInput | None, web.Response | None]:
    try:
        payload = await read_object(request)
    except BadRequestBody as exc:
        return None, _bad_body(exc)
    raw = payload.get("contact")
    if not isinstance(raw, dict):
        return None, unprocessable("Missing attribute", "missing", "/data/attributes/contact")
    data = _ContactInput(raw)
    return (None, data.error) if data.error is not None else (data, None)


def _refuse(state: SimState, email: str, *, new: bool) -> web.Response | None:
    """Why this email may not be written (exclusion list; plan cap for new ones), as AC-style 422s.

    Same rules as the bulk importer, so a client's per-contact path and bulk path agree on outcomes.
    """
    if state.store.is_excluded(email):
        return unprocessable("The email address is on the account's exclusion list.", "email_excluded",
                             "/data/attributes/email")
    if new and state.store.at_contact_limit():
        return unprocessable("The account has reached its contact limit.", "contact_limit",
                             "/data/attributes/email")
    return None


@routes.post(P + "/contact/sync")
async def contact_sync(request: web.Request) -> web.Response:
    """Upsert by email: 201 when created, 200 when an existing contact was updated."""
    state = _state(request)
    data, error = await _contact_body(request)
    if data is None:
        return error or message(400, "bad request")
    email = normalize_email(data.email)
    contact = state.store.by_email.get(email)
    created = contact is None
    refusal = _refuse(state, email, new=created)
    if refusal is not None:
        return refusal
    if contact is None:
        contact = state.store.create_contact(email)
    applied = _apply_input(state, contact, data)
    return json_response({"contact": contact_json(contact),
                          "fieldValues": [field_value_json(contact, fid) for fid in applied]},
                         status=201 if created else 200)


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
    contact = state.store.create_contact(email)
    applied = _apply_input(state, contact, data)
    return json_response({"contact": contact_json(contact),
                          "fieldValues": [field_value_json(contact, fid) for fid in applied]}, status=201)


@routes.get(P + "/contacts")
async def contact_search(request: web.Request) -> web.Response:
    """Filters: email, listid, status (1/2, -1 any), id_greater, orders[id]; limit/offset paging."""
    store = _state(request).store
    limit, offset = paging(request)
    descending = request.query.get("orders[id]", "ASC").upper() == "DESC"
    id_greater = query_int(request, "id_greater")
    list_id = query_int(request, "listid")
    status = query_int(request, "status")
    if status == -1:
        status = None
    email = request.query.get("email")
    ids: Any
    if email is not None:
        found = store.by_email.get(normalize_email(email))
        ids = [found.id] if found is not None and _matches(found, list_id, status) else []
    elif list_id is not None:
        members = store.members.get(list_id)
        if members is None or (status is not None and status not in members.by_status):
            ids = []
        else:
            ids = (members.any if status is None else members.by_status[status]).ids
    elif status is not None:
        # Not indexed (the client always filters by list); a scan, in id order.
        ids = [c.id for c in store.contacts.values() if status in c.lists.values()]
    else:
        ids = range(1, store.next_contact_id)
    chosen, total = page(ids, id_greater=id_greater, offset=offset, limit=limit, descending=descending)
    return json_response({"contacts": [contact_json(store.contacts[i]) for i in chosen],
                          "meta": {"total": str(total)}})


def _matches(contact: Contact, list_id: int | None, status: int | None) -> bool:
    if list_id is not None:
        on = contact.lists.get(list_id)
        return on is not None and (status is None or on == status)
    return status is None or status in contact.lists.values()


def _path_id(request: web.Request, name: str = "id") -> int | None:
    return as_id(request.match_info.get(name, ""))


@routes.get(P + "/contacts/{id}")
async def contact_get(request: web.Request) -> web.Response:
    store = _state(request).store
    contact_id = _path_id(request)
    contact = store.contacts.get(contact_id) if contact_id is not None else None
    if contact is None:
        return not_found("Subscriber", request.match_info["id"])
    return json_response({
        "contact": contact_json(contact),
        "contactLists": [contact_list_json(store, contact, lid) for lid in contact.lists],
        "fieldValues": [field_value_json(contact, fid) for fid in contact.fields],
    })


@routes.get(P + "/contacts/{id}/contactTags")
async def contact_tags_of(request: web.Request) -> web.Response:
    store = _state(request).store
    contact_id = _path_id(request)
    contact = store.contacts.get(contact_id) if contact_id is not None else None
    if contact is None:
        return not_found("Subscriber", request.match_info["id"])
    links = [store.contact_tags[link_id] for link_id in contact.tags.values()]
    return json_response({"contactTags": [contact_tag_json(link) for link in links]})


@routes.post(P + "/contactLists")
async def contact_list_update(request: web.Request) -> web.Response:
    """Subscribe (1) or unsubscribe (2) a contact; like AC, this CAN re-subscribe (and the stats count it)."""
    state = _state(request)
    try:
        payload = await read_object(request)
    except BadRequestBody as exc:
        return _bad_body(exc)
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
    state.store.set_list_status(contact, list_id, status, via_api=True)
    membership = contact_list_json(state.store, contact, list_id, status_as_int=True)
    return json_response({"contacts": [contact_json(contact)], "contactList": membership})


@routes.get(P + "/users/me")
async def users_me(request: web.Request) -> web.Response:
    """The key's user: the cheapest authenticated call, handy for checking a key (`config check --online`)."""
    return json_response({"user": {"id": "1", "username": "admin", "firstName": "Sim", "lastName": "Admin",
                                   "email": "admin@example.com", "lang": "english", "localZoneid": "UTC"}})


# Lists and fields -----------------------------------------------------------------------------------------


@routes.get(P + "/lists")
async def lists_index(request: web.Request) -> web.Response:
    lists = _state(request).settings.lists
    limit, offset = paging(request)
    ordered = sorted(lists.items())
    chosen = ordered[offset:offset + limit]
    return json_response({"lists": [list_json(i, name) for i, name in chosen],
                          "meta": {"total": str(len(ordered))}})


@routes.get(P + "/lists/{id}")
async def list_get(request: web.Request) -> web.Response:
    lists = _state(request).settings.lists
    list_id = _path_id(request)
    if list_id is None or list_id not in lists:
        return not_found("_List", request.match_info["id"])
    return json_response({"list": list_json(list_id, lists[list_id])})


@routes.get(P + "/fields")
async def fields_index(request: web.Request) -> web.Response:
    """Custom fields; `options` hold option ids, values are in the side-loaded `fieldOptions` (as in AC)."""
    state = _state(request)
    limit, offset = paging(request)
    definitions = sorted(state.settings.fields, key=lambda f: f["id"])
    numbered = list(enumerate(definitions, start=1))
    perstag = request.query.get("filters[perstag]")
    if perstag:
        numbered = [(n, f) for n, f in numbered if f["perstag"].upper() == perstag.upper()]
    chosen = numbered[offset:offset + limit]
    options = [row for _, f in chosen for row in state.store.field_options.get(f["id"], [])]
    return json_response({
        "fields": [field_json(state.store, f, n) for n, f in chosen],
        "fieldOptions": options,
        "fieldRels": [],
        "meta": {"total": str(len(numbered))},
    })


# Tags -------------------------------------------------------------------------------------------------------


@routes.get(P + "/tags")
async def tags_index(request: web.Request) -> web.Response:
    """Tags; `search` (contains) and `filters[search][eq]` (exact), case-insensitive; paged."""
    store = _state(request).store
    limit, offset = paging(request)
    tags = list(store.tags.values())
    exact = request.query.get("filters[search][eq]")
    contains = request.query.get("search") or request.query.get("filters[search][contains]")
    if exact is not None:
        tags = [t for t in tags if t.name.lower() == exact.strip().lower()]
    elif contains:
        tags = [t for t in tags if contains.lower() in t.name.lower()]
    return json_response({"tags": [tag_json(t) for t in tags[offset:offset + limit]],
                          "meta": {"total": str(len(tags))}})


@routes.post(P + "/tags")
async def tag_create(request: web.Request) -> web.Response:
    store = _state(request).store
    try:
        payload = await read_object(request)
    except BadRequestBody as exc:
        return _bad_body(exc)
    raw = payload.get("tag")
    if not isinstance(raw, dict):
        return unprocessable("Missing attribute", "missing", "/data/attributes/tag")
    name = raw.get("tag")
    if not isinstance(name, str) or not name.strip():
        return unprocessable("Missing attribute", "missing", "/data/attributes/tag")
    if store.find_tag(name) is not None:
        return unprocessable("Duplicate tag: a tag with this name already exists.", "duplicate",
                             "/data/attributes/tag")
    tag_type = raw.get("tagType") if isinstance(raw.get("tagType"), str) else "contact"
    description = raw.get("description") if isinstance(raw.get("description"), str) else ""
    tag = store.create_tag(name, tag_type or "contact", description or "")
    return json_response({"tag": tag_json(tag)}, status=201)


@routes.post(P + "/contactTags")
async def contact_tag_create(request: web.Request) -> web.Response:
    """Tag a contact (idempotent: an existing link is returned again, still 201)."""
    store = _state(request).store
    try:
        payload = await read_object(request)
    except BadRequestBody as exc:
        return _bad_body(exc)
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
    return json_response({"contactTag": contact_tag_json(link)}, status=201)


@routes.delete(P + "/contactTags/{id}")
async def contact_tag_delete(request: web.Request) -> web.Response:
    store = _state(request).store
    link_id = _path_id(request)
    link = store.contact_tags.get(link_id) if link_id is not None else None
    if link is None:
        return not_found("SubscriberTag", request.match_info["id"])
    store.untag(link)
    return json_response({})

