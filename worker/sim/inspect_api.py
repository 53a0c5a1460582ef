"""The inspection and control API under `/_sim/`: how tests see and steer the simulated account.

These routes bypass auth, rate limits, fault injection and the request log on purpose: a test that
checks the outcome must not disturb the budget or the log it is asserting on. Seeding and user actions
made here (unsubscribe, exclude, add_contact) are "not via the API", so they never count as
re-subscriptions.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from worker.sim.emails import is_valid_email, normalize_email
from worker.sim.records import STATUS_BY_NAME, UNSUBSCRIBED, UNSUBSCRIPTIONS, Contact
from worker.sim.render import contact_list_json
from worker.sim.replies import BadRequestBody, api_base, json_response, message, read_object
from worker.sim.settings import normalize_field
from worker.sim.state import STATE, SimState

routes = web.RouteTableDef()
P = "/_sim"
Handler = Callable[[web.Request], Awaitable[web.Response]]


def _state(request: web.Request) -> SimState:
    return request.app[STATE]


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        return await read_object(request)
    except BadRequestBody as exc:
        raise _Refused(str(exc)) from exc


class _Refused(Exception):
    """A /_sim request that cannot be honoured; answered 400 with the text."""


def _refusal_guard(handler: Handler) -> Handler:
    """Turn a refused control request (or a rejected setting) into 400 {"message"} instead of a 500."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except (_Refused, ValueError) as exc:
            return message(400, str(exc))

    return wrapped


@routes.get(P + "/health")
async def health(request: web.Request) -> web.Response:
    """Readiness probe for the CLI and the threaded runner."""
    return json_response({"ok": True})


@routes.get(P + "/lists/{id}/members")
async def members(request: web.Request) -> web.Response:
    """Everyone with a status on the list (subscribed or unsubscribed), keyed by lower-cased email."""
    state = _state(request)
    raw = request.match_info["id"]
    if not raw.isdigit() or int(raw) not in state.settings.lists:
        return message(404, f"No list with id {raw}")
    list_id = int(raw)
    store = state.store
    group = store.members.get(list_id)
    out: dict[str, Any] = {}
    if group is not None:
        contacts = store.contacts
        for contact_id in group.any:
            contact = contacts[contact_id]
            out[contact.email] = store.member_view(contact, list_id)
    return json_response(out)


@routes.get(P + "/requests")
async def requests_log(request: web.Request) -> web.Response:
    """The API request log in arrival order; `?since=N` skips the first N entries."""
    log = _state(request).request_log
    since = request.query.get("since", "0")
    start = int(since) if since.isdigit() else 0
    entries = list(log)[start:] if start else list(log)
    return json_response(entries)


@routes.get(P + "/stats")
async def stats(request: web.Request) -> web.Response:
    return json_response(_state(request).stats())


@routes.get(P + "/batches/{id}")
async def batch_detail(request: web.Request) -> web.Response:
    """One batch with per-contact failure reasons (AC only gives emails; this helps debugging)."""
    state = _state(request)
    batch = state.imports.batches.get(request.match_info["id"])
    if batch is None:
        return message(404, f"No batch {request.match_info['id']}")
    return json_response({"id": batch.id, "status": batch.final or "pending", "contacts": batch.count,
                          "success": batch.success, "failure": batch.failure, "reasons": batch.reasons})


@routes.post(P + "/reset")
async def reset(request: web.Request) -> web.Response:
    _state(request).reset()
    return json_response({"ok": True})


@routes.post(P + "/save")
@_refusal_guard
async def save(request: web.Request) -> web.Response:
    """Keep the account's data aside under ``name`` (pending batches are not part of it)."""
    name = str((await _body(request)).get("name", ""))
    if not name:
        return message(400, "name is required")
    _state(request).save(name)
    return json_response({"ok": True})


@routes.post(P + "/restore")
@_refusal_guard
async def restore(request: web.Request) -> web.Response:
    """Reset the account, then put back the data saved under ``name``."""
    name = str((await _body(request)).get("name", ""))
    try:
        _state(request).restore(name)
    except KeyError:
        return message(404, f"nothing saved under {name!r}")
    return json_response({"ok": True})


@routes.get(P + "/settings")
async def settings_get(request: web.Request) -> web.Response:
    return json_response(_state(request).settings.to_json())


@routes.post(P + "/settings")
@_refusal_guard
async def settings_post(request: web.Request) -> web.Response:
    """Change knobs at runtime; the whole change is validated first, so a bad one changes nothing."""
    knobs = await _body(request)
    new = _state(request).configure(knobs)
    return json_response(new.to_json())


@routes.post(P + "/contacts/unsubscribe")
@_refusal_guard
async def unsubscribe(request: web.Request) -> web.Response:
    """Someone unsubscribing in AC: status 2 on the list; the contact is created if it does not exist.

    `how` says who: "campaign" (default; a campaign email's link: campaign and message set), "form"
    (unsubreason set), "automation" (unsubscribeAutomation set): the person's own; "api": all null, as
    if an API client had done it.
    """
    state = _state(request)
    body = await _body(request)
    email = _email(body)
    list_id = _list_id(state, body.get("list_id"))
    how = body.get("how", "campaign")
    cause = UNSUBSCRIPTIONS.get(how) if isinstance(how, str) else None
    if cause is None:
        raise _Refused(f"'how' must be one of {', '.join(UNSUBSCRIPTIONS)}, not {how!r}")
    contact = _get_or_create(state, email)
    state.store.set_list_status(contact, list_id, UNSUBSCRIBED, via_api=False, cause=cause)
    return json_response({"id": str(contact.id)})


@routes.get(P + "/contact_list")
@_refusal_guard
async def contact_list(request: web.Request) -> web.Response:
    """`?email=&list_id=`: the contact's list record exactly as `GET /contacts/{id}/contactLists` shows it."""
    state = _state(request)
    contact = state.store.by_email.get(normalize_email(request.query.get("email", "")))
    list_id = _list_id(state, request.query.get("list_id"))
    record = contact.lists.get(list_id) if contact is not None else None
    if contact is None or record is None:
        return message(404, "no such contact on that list")
    return json_response(contact_list_json(record, contact, api_base(request)))


@routes.post(P + "/contacts/delete")
@_refusal_guard
async def delete_contact(request: web.Request) -> web.Response:
    """Someone deleting a contact in ActiveCampaign's UI; 404 when there is no such contact."""
    state = _state(request)
    body = await _body(request)
    contact = state.store.by_email.get(_email(body))
    if contact is None:
        return message(404, "no such contact")
    state.store.delete_contact(contact)
    return json_response({"id": str(contact.id)})


@routes.post(P + "/contacts/exclude")
@_refusal_guard
async def exclude(request: web.Request) -> web.Response:
    """Put an address (or a '*' pattern) on the account's exclusion list."""
    body = await _body(request)
    email = body.get("email")
    if not isinstance(email, str) or not email.strip():
        raise _Refused("'email' is required")
    _state(request).store.exclude(email)
    return json_response({"ok": True})


@routes.post(P + "/contacts")
@_refusal_guard
async def seed_contact(request: web.Request) -> web.Response:
    """Seed or update a contact directly (bypasses limits and the exclusion list)."""
    state = _state(request)
    store = state.store
    body = await _body(request)
    contact = _get_or_create(state, _email(body))
    text = {key: str(body[key]) for key in ("first_name", "last_name", "phone", "customer_acct_name")
            if body.get(key) is not None}
    if "bounced" in body:
        contact.bounced = bool(body["bounced"])
    fields = body.get("fields") or {}
    if not isinstance(fields, dict):
        raise _Refused("'fields' must be an object of {perstag_or_id: value}")
    values: list[tuple[int, str]] = []
    for key, value in fields.items():
        field_id = store.field_id_for(key)
        if field_id is None:
            raise _Refused(f"unknown custom field {key!r}")
        values.append((field_id, str(value)))
    store.update_contact(contact, text, values)
    tags = body.get("tags") or []
    if not isinstance(tags, list):
        raise _Refused("'tags' must be a list of names")
    for name in tags:
        store.tag_contact(contact, store.find_tag(str(name)) or store.create_tag(str(name)))
    lists = body.get("lists") or {}
    if not isinstance(lists, dict):
        raise _Refused("'lists' must be an object of {list_id: 'subscribed'|'unsubscribed'}")
    for raw_id, status_name in lists.items():
        list_id = _list_id(state, raw_id)
        status = STATUS_BY_NAME.get(str(status_name))
        if status is None:
            raise _Refused(f"list status must be 'subscribed' or 'unsubscribed', not {status_name!r}")
        store.set_list_status(contact, list_id, status, via_api=False)
    return json_response({"id": str(contact.id)})


@routes.get(P + "/contacts/{email}")
async def contact_detail(request: web.Request) -> web.Response:
    state = _state(request)
    contact = state.store.by_email.get(normalize_email(request.match_info["email"]))
    if contact is None:
        return message(404, "no such contact")
    return json_response(state.store.contact_view(contact))


@routes.post(P + "/fields")
@_refusal_guard
async def add_field(request: web.Request) -> web.Response:
    """Define a custom field (kept across /_sim/reset, like the lists: it is account configuration)."""
    state = _state(request)
    body = await _body(request)
    existing = state.settings.fields
    if body.get("id") is None:
        body["id"] = max((f["id"] for f in existing), default=0) + 1
    definition = normalize_field(body)
    if any(f["perstag"].upper() == definition["perstag"].upper() for f in existing):
        raise _Refused(f"a field with perstag {definition['perstag']!r} already exists")
    state.configure({"fields": [*existing, definition]})
    return json_response({"id": definition["id"]})


def _email(body: dict[str, Any]) -> str:
    email = body.get("email")
    if not isinstance(email, str) or not is_valid_email(email):
        raise _Refused(f"'email' must be a valid address, not {email!r}")
    return normalize_email(email)


def _list_id(state: SimState, raw: Any) -> int:
    try:
        list_id = int(raw)
    except (TypeError, ValueError) as exc:
        raise _Refused(f"bad list id {raw!r}") from exc
    if list_id not in state.settings.lists:
        raise _Refused(f"no list with id {list_id}")
    return list_id


def _get_or_create(state: SimState, email: str) -> Contact:
    return state.store.by_email.get(email) or state.store.create_contact(email)
