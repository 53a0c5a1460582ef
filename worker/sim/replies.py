"""Response and request helpers shared by the AC routes and the /_sim routes.

AC has three error shapes (not found `{"message"}`, validation `{"errors":[{title,detail,code,source}]}`,
permission `{"errors":[{status,title,detail}]}`); having one function per shape keeps every route
answering in the family the real service uses, which is what a robust client has to parse.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

#: Request key under which the API middleware keeps the request's log entry (handlers fill in body size).
#: aiohttp >= 3.11 wants typed keys (and warns on strings); older releases, which pyproject allows, lack them.
LOG_ENTRY: Any = web.RequestKey("sim_log_entry", dict) if hasattr(web, "RequestKey") else "sim_log_entry"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """orjson-encoded JSON response (the simulator's hot path returns many of these)."""
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json",
                        headers=headers)


def message(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
    """AC's simplest error shape: `{"message": ...}` (not found, auth, rate limit)."""
    return json_response({"message": text}, status=status, headers=headers)


def not_found(kind: str, ident: object) -> web.Response:
    """AC's wording for a missing object, e.g. "No Result found for Subscriber with id 7"."""
    return message(404, f"No Result found for {kind} with id {ident}")


def unprocessable(title: str, code: str, pointer: str, detail: str = "") -> web.Response:
    """AC's 422 validation family."""
    return json_response(
        {"errors": [{"title": title, "detail": detail, "code": code, "source": {"pointer": pointer}}]},
        status=422,
    )


def errors(status: int, title: str, detail: str) -> web.Response:
    """AC's `{"errors":[{status,title,detail}]}` family (permission, some not-found answers)."""
    return json_response({"errors": [{"status": status, "title": title, "detail": detail}]}, status=status)


class BadRequestBody(Exception):
    """The body is not JSON (or not the JSON object the route needs)."""


async def read_body(request: web.Request) -> bytes:
    """The raw body, recording its length in the request log entry (chunked bodies have no header)."""
    body = await request.read()
    entry = request.get(LOG_ENTRY)
    if entry is not None:
        entry["bytes"] = len(body)
    return body


async def read_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or BadRequestBody."""
    body = await read_body(request)
    try:
        data = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError as exc:
        raise BadRequestBody(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequestBody("request body must be a JSON object")
    return data


def query_int(request: web.Request, name: str, default: int | None = None) -> int | None:
    """An integer query parameter; junk is treated as absent, as AC does with unparseable filters."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        return default


def paging(request: web.Request) -> tuple[int, int]:
    """(limit, offset) with AC's rules: limit defaults to 20, is capped at 100; offset is zero-based."""
    limit = query_int(request, "limit", 20) or 20
    limit = 20 if limit <= 0 else min(limit, 100)
    offset = max(0, query_int(request, "offset", 0) or 0)
    return limit, offset


def as_id(value: Any) -> int | None:
    """An AC object id given as int or digit string (v3 examples use both); None when not an id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        number = int(value.strip())
        return number if number > 0 else None
    return None


def api_base(request: web.Request) -> str:
    """The API root this request came in on, for the `links` AC puts in records."""
    return f"{request.scheme}://{request.host}/api/3"
