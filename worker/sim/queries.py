"""Query parameters: which ones a route implements, and reading dates and orders from them.

The simulator's contract (see worker/sim/__init__.py): what it does not simulate it refuses loudly. A route
declares the parameters it implements with `@accepts(...)`; the API middleware answers any other
parameter (or any parameter at all on a route that declares none) with 501 naming it, so a client that
filters by `tagid` never gets the whole account back and passes for the wrong reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web

from worker.sim.stamps import parse_instant

PAGING = ("limit", "offset")
_ATTR = "_sim_accepts"
F = TypeVar("F", bound=Callable[..., Any])


class BadQuery(ValueError):
    """A parameter the route implements has a value it cannot use (answered 400 with the text)."""


def accepts(*names: str) -> Callable[[F], F]:
    """Declare the query parameters a route implements (applied under the `@routes.get(...)` line)."""

    def mark(handler: F) -> F:
        setattr(handler, _ATTR, frozenset(names))
        return handler

    return mark


def unimplemented(request: web.Request) -> list[str]:
    """The request's query parameters its route does not implement, in the order sent."""
    allowed: frozenset[str] = getattr(request.match_info.handler, _ATTR, frozenset())
    seen: list[str] = []
    for name in request.query:
        if name not in allowed and name not in seen:
            seen.append(name)
    return seen


def accepted(request: web.Request) -> frozenset[str]:
    found: frozenset[str] = getattr(request.match_info.handler, _ATTR, frozenset())
    return found


def text(request: web.Request, name: str) -> str | None:
    """A parameter's value; an empty value counts as absent (as AC's PHP treats it)."""
    value = request.query.get(name)
    return value if value else None


def instant(request: web.Request, name: str) -> datetime | None:
    """A date filter such as `filters[updated_after]`, parsed; BadQuery naming it when unreadable."""
    value = text(request, name)
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise BadQuery(f"{name}: {exc}") from None


def orders(request: web.Request, keys: Iterable[str]) -> list[tuple[str, bool]]:
    """`orders[key]=ASC|DESC` in the order sent, as (key, descending); BadQuery on another direction."""
    wanted = set(keys)
    out: list[tuple[str, bool]] = []
    for name, value in request.query.items():
        if not (name.startswith("orders[") and name.endswith("]")) or name[7:-1] not in wanted:
            continue
        direction = value.strip().upper()
        if direction not in ("ASC", "DESC"):
            raise BadQuery(f"{name} must be ASC or DESC, not {value!r}")
        out.append((name[7:-1], direction == "DESC"))
    return out


def integer(request: web.Request, name: str) -> int | None:
    """An integer filter (`listid`, `id_greater`, ...); BadQuery naming it when it is not one."""
    value = text(request, name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise BadQuery(f"{name} must be an integer, not {value!r}") from None
