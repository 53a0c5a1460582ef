"""What happens to every `/api/3/` request before and after its route: the account's gatekeeping.

Order (documented in the package docstring, relied on by tests):
1. `latency` sleep; then the arrival time is taken (it stamps the log entry and the rate window).
2. The request is appended to the request log (status filled in when answered).
3. `error_rate`: a random 500/502/503 "before doing anything": nothing counted, nothing applied.
4. Auth: no `Api-Token` -> 401, unknown token -> 403 (not counted in the rate window); with
   `bad_key_html`, both are 200 with an HTML login page instead (and no rate headers).
5. 429 storm, then the per-second window: 429 with Retry-After; a refused request is not counted.
6. What is not simulated is refused: an unknown endpoint or method, or a query parameter the route does
   not declare (`worker.sim.queries.accepts`), gets 501 {"message"} naming it.
7. The route (a parameter value it cannot use: 400 {"message"}). Every response from step 4 on, except
   the login page, carries RateLimit-Limit / RateLimit-Remaining.
`/_sim/` requests skip all of this: they are free, unauthenticated and unlogged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from worker.sim.limits import retry_after_header
from worker.sim.queries import BadQuery, accepted, unimplemented
from worker.sim.replies import LOG_ENTRY, json_response, message
from worker.sim.state import STATE, SimState

API_PREFIX = "/api/3/"
API_ROOT = "/api/3"
log = logging.getLogger("worker.sim")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: What AC's web app has been seen to answer an API request with a bad key: its login page, status 200.
LOGIN_PAGE = (b"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Log in | ActiveCampaign"
              b"</title></head>\n<body><form method=\"post\" action=\"/admin/index.php\"><h1>Log in</h1>"
              b"<input name=\"user\" placeholder=\"Username or email\"><input name=\"pass\" type=\"password\">"
              b"<button type=\"submit\">Log in</button></form></body></html>\n")

_GATEWAY_PAGES = {
    502: b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    503: b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
}


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Gatekeeping and logging for the AC API; see the module docstring for the order."""
    if not (request.path.startswith(API_PREFIX) or request.path == API_ROOT):
        return await handler(request)
    state = request.app[STATE]
    if state.settings.latency > 0:
        await asyncio.sleep(state.settings.latency)
    now = time.monotonic()
    entry: dict[str, Any] = {"method": request.method, "path": request.path, "status": 0,
                             "bytes": request.content_length or 0, "contacts": None, "at": now}
    request[LOG_ENTRY] = entry
    state.request_log.append(entry)
    status = 499  # stays so only if the handler is cancelled (client went away)
    try:
        response = await _gate(request, handler, state, now)
        status = response.status
        return response
    finally:
        entry["status"] = status
        state.counters[f"status:{status}"] += 1


async def _gate(request: web.Request, handler: Handler, state: SimState, now: float) -> web.StreamResponse:
    settings = state.settings
    if settings.error_rate > 0 and state.rng.random() < settings.error_rate:
        state.counters["errors_injected"] += 1
        code = state.rng.choice((500, 502, 503))
        if code == 500:
            return message(500, "Internal Server Error (simulated)")
        return web.Response(body=_GATEWAY_PAGES[code], status=code, content_type="text/html")

    limits = state.limits
    token = request.headers.get("Api-Token")
    if (token is None or token not in settings.api_keys) and settings.bad_key_html:
        return web.Response(body=LOGIN_PAGE, status=200, content_type="text/html", charset="utf-8")
    if token is None:
        return message(401, "Unauthorized: the Api-Token header is missing.", _rate_headers(state, now))
    if token not in settings.api_keys:
        return message(403, "Forbidden: the Api-Token is not valid for this account.",
                       _rate_headers(state, now))

    storm = limits.storm_remaining(settings, now)
    if storm > 0:
        state.counters["storm_limited"] += 1
        return _too_many(state, now, storm)
    if not limits.api.try_acquire(now):
        state.counters["rate_limited"] += 1
        return _too_many(state, now, limits.api.retry_after(now))

    response: web.StreamResponse
    refusal = _not_simulated(request)
    if refusal is not None:
        state.counters["not_simulated"] += 1
        response = message(501, refusal)
        response.headers.update(_rate_headers(state, now))
        return response
    try:
        response = await handler(request)
    except BadQuery as exc:
        response = message(400, str(exc))
    except web.HTTPException as exc:  # aiohttp's body-size guard
        response = message(exc.status, exc.reason)
    except Exception:
        log.exception("simulator route failed: %s %s", request.method, request.path)
        state.counters["internal_errors"] += 1
        response = message(500, "Internal Server Error (simulator bug; see its log)")
    response.headers.update(_rate_headers(state, now))
    return response


def _not_simulated(request: web.Request) -> str | None:
    """Why the simulator will not answer this request as AC would (see the contract), or None."""
    where = f"{request.method} {request.path}"
    if request.match_info.http_exception is not None:
        return (f"Not simulated: {where}. The simulator serves only the endpoints listed in the "
                "worker.sim package docstring; it refuses the rest instead of guessing an answer.")
    unknown = unimplemented(request)
    if not unknown:
        return None
    implemented = ", ".join(sorted(accepted(request))) or "none"
    names = ", ".join(repr(n) for n in unknown)
    return (f"Not simulated: query parameter(s) {names} on {where}. Implemented here: {implemented}. "
            "Remove the parameter, or extend worker.sim, rather than trust an unfiltered answer.")


def _rate_headers(state: SimState, now: float) -> dict[str, str]:
    window = state.limits.api
    return {"RateLimit-Limit": str(window.limit), "RateLimit-Remaining": str(window.remaining(now))}


def _too_many(state: SimState, now: float, wait: float) -> web.Response:
    headers = {"Retry-After": retry_after_header(wait), "RateLimit-Limit": str(state.limits.api.limit),
               "RateLimit-Remaining": "0"}
    return json_response({"message": "Too Many Requests: the account's API rate limit is exceeded."},
                         status=429, headers=headers)
