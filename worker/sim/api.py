"""The account-level ActiveCampaign v3 routes: the API root, the user, bulk import, lists, fields, tags.

Auth, rate limiting, logging and the refusal of what is not simulated happen in `middleware`; these
handlers only implement each endpoint's semantics and AC's response shapes (contacts and what hangs off
them are in `api_contacts`). Every route declares the query parameters it implements with
`@accepts(...)`. Undocumented behaviour is chosen here and listed in the package docstring.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from worker.sim.imports import Batch
from worker.sim.queries import PAGING, accepts, text
from worker.sim.render import field_json, list_json, tag_json
from worker.sim.replies import (
    LOG_ENTRY,
    BadRequestBody,
    api_base,
    as_id,
    json_response,
    message,
    not_found,
    paging,
    read_body,
    read_object,
    unprocessable,
)
from worker.sim.state import STATE, SimState
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


# The API root and the user ----------------------------------------------------------------------------------


@routes.get(P)
@routes.get(P + "/")
async def api_root(request: web.Request) -> web.Response:
    """A valid key gets 200 here: ETL taps and API clients use it as their token check."""
    return json_response({"message": "ActiveCampaign API v3 (simulated by segment-export)", "version": "3"})


@routes.get(P + "/users/me")
async def users_me(request: web.Request) -> web.Response:
    """The key's user: the cheapest authenticated call, handy for checking a key (`config check --online`)."""
    return json_response({"user": {"id": "1", "username": "admin", "firstName": "Sim", "lastName": "Admin",
                                   "email": "admin@example.com", "lang": "english", "localZoneid": "UTC"}})


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
@accepts("batchId")
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


# Lists, fields and tags -------------------------------------------------------------------------------------


@routes.get(P + "/lists")
@accepts(*PAGING)
async def lists_index(request: web.Request) -> web.Response:
    store = _state(request).store
    limit, offset = paging(request)
    ordered = [store.lists[i] for i in sorted(store.lists)]
    base = api_base(request)
    return json_response({"lists": [list_json(item, base) for item in ordered[offset:offset + limit]],
                          "meta": {"total": str(len(ordered))}})


@routes.get(P + "/lists/{id}")
async def list_get(request: web.Request) -> web.Response:
    store = _state(request).store
    list_id = as_id(request.match_info["id"])
    item = store.lists.get(list_id) if list_id is not None else None
    if item is None:
        return not_found("_List", request.match_info["id"])
    return json_response({"list": list_json(item, api_base(request))})


@routes.get(P + "/fields")
@accepts(*PAGING, "filters[perstag]")
async def fields_index(request: web.Request) -> web.Response:
    """Custom fields; `options` hold option ids, values are in the side-loaded `fieldOptions` (as in AC)."""
    state = _state(request)
    limit, offset = paging(request)
    definitions = sorted(state.settings.fields, key=lambda f: f["id"])
    numbered = list(enumerate(definitions, start=1))
    perstag = text(request, "filters[perstag]")
    if perstag:
        numbered = [(n, f) for n, f in numbered if f["perstag"].upper() == perstag.upper()]
    chosen = numbered[offset:offset + limit]
    options = state.store.field_options
    base = api_base(request)
    return json_response({
        "fields": [field_json(options.get(f["id"], []), f, n, base) for n, f in chosen],
        "fieldOptions": [row for _, f in chosen for row in options.get(f["id"], [])],
        "fieldRels": [],
        "meta": {"total": str(len(numbered))},
    })


@routes.get(P + "/tags")
@accepts(*PAGING, "search", "filters[search][eq]", "filters[search][contains]")
async def tags_index(request: web.Request) -> web.Response:
    """Tags; `search` (contains) and `filters[search][eq]` (exact), case-insensitive; paged."""
    store = _state(request).store
    limit, offset = paging(request)
    tags = list(store.tags.values())
    exact = text(request, "filters[search][eq]")
    contains = text(request, "search") or text(request, "filters[search][contains]")
    if exact is not None:
        tags = [t for t in tags if t.name.lower() == exact.strip().lower()]
    elif contains:
        tags = [t for t in tags if contains.lower() in t.name.lower()]
    base = api_base(request)
    return json_response({"tags": [tag_json(t, base) for t in tags[offset:offset + limit]],
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
    return json_response({"tag": tag_json(tag, api_base(request))}, status=201)
