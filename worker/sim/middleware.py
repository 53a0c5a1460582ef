"""What happens to every `/api/3/` request before and after its route: the account's gatekeeping.

Order (documented in the package docstring, relied on by tests):
1. `latency` sleep; then the arrival time is taken (it stamps the log entry and the rate window).
2. The request is appended to the request log (status filled in when answered).
3. `error_rate`: a random 500/502/503 "before doing anything": nothing counted, nothing applied.
4. Auth: no `Api-Token` -> 401, unknown token -> 403 (not counted in the rate window).
5. 429 storm, then the per-second window: 429 with Retry-After; a refused request is not counted.
6. The route. Every response from step 4 on carries RateLimit-Limit / RateLimit-Remaining.
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
from worker.sim.replies import LOG_ENTRY, json_response, message
from worker.sim.state import STATE, SimState

API_PREFIX = "/api/3/"
log = logging.getLogger("worker.sim")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_GATEWAY_PAGES = {
    502: b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    503: b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
}


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Gatekeeping and logging for the AC API; see the module docstring for the order."""
    if not request.path.startswith(API_PREFIX):
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

    try:
        response = await handler(request)
    except web.HTTPException as exc:  # router 404/405, aiohttp's body-size guard
        response = message(exc.status, exc.reason)
    except Exception:
        log.exception("simulator route failed: %s %s", request.method, request.path)
        state.counters["internal_errors"] += 1
        response = message(500, "Internal Server Error (simulator bug; see its log)")
    response.headers.update(_rate_headers(state, now))
    return response


def _rate_headers(state: SimState, now: float) -> dict[str, str]:
    window = state.limits.api
    return {"RateLimit-Limit": str(window.limit), "RateLimit-Remaining": str(window.remaining(now))}


def _too_many(state: SimState, now: float, wait: float) -> web.Response:
    headers = {"Retry-After": retry_after_header(wait), "RateLimit-Limit": str(state.limits.api.limit),
               "RateLimit-Remaining": "0"}
    return json_response({"message": "Too Many Requests: the account's API rate limit is exceeded."},
                         status=429, headers=headers)
