"""Async client for the few ActiveCampaign v3 endpoints a segment sync (and verify, tag removal, erasure) needs.

Why these choices:

* one `aiohttp.ClientSession` per client: keep-alive connections matter when a sync sends thousands of
  requests to one host;
* every request waits for a limiter slot first ("bulk" for the bulk import POST, "other" for the rest), so
  the account's budget is respected by construction and 429s are the exception;
* retries live here, not in callers: AC's "slow down" answers go to the limiter (they concern the whole
  account), server and network failures get exponential backoff with full jitter (they concern one request);
* the API key is a `Secret`; `_auth_headers()` is the only place that reveals it, and no message we build
  contains a header, a URL query or an email.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

import aiohttp
import orjson

from worker.activecampaign.errors import ActiveCampaignError, SendCancelled
from worker.activecampaign.limiter import RateLimiter
from worker.activecampaign.pacing import RequestKind
from worker.activecampaign.responses import (
    BulkAccepted,
    ImportInfo,
    contact_failures,
    is_rate_limit_message,
    is_success,
    message_of,
    parse_import_info,
)
from worker.activecampaign.retry import bulk_rate_limit_pause, jittered_backoff, retry_after_seconds
from worker.privacy.secret import Secret

__all__ = [
    "MAX_BULK_BODY_BYTES",
    "MAX_BULK_CONTACTS",
    "ActiveCampaignClient",
    "ActiveCampaignError",
    "BulkAccepted",
    "ImportInfo",
]

log = logging.getLogger(__name__)

#: AC's documented ceilings for one bulk import request.
MAX_BULK_CONTACTS = 250
MAX_BULK_BODY_BYTES = 399_999
#: Page size for list endpoints (AC's maximum).
PAGE_LIMIT = 100
#: Bound on pages fetched by one listing, so a server that lies about `meta.total` cannot loop us forever.
MAX_PAGES = 1_000

OnRequest = Callable[[str, int, float], None]


class ActiveCampaignClient:
    """Talks to one ActiveCampaign account; use as ``async with ActiveCampaignClient(...) as ac:``."""

    def __init__(
        self,
        base_url: str,
        api_key: Secret,
        limiter: RateLimiter,
        *,
        timeout: float = 30.0,
        max_retries: int = 8,
        on_request: OnRequest | None = None,
        max_rate_limited: int = 60,
        retry_base: float = 0.5,
        retry_cap: float = 20.0,
        rng: random.Random | None = None,
        may_write: Callable[[], bool] | None = None,
    ) -> None:
        """`max_rate_limited` bounds "slow down" answers per request (they are not failures, so they do
        not count against `max_retries`); `retry_base`/`retry_cap` shape the jittered backoff.
        `may_write` is asked right before every attempt of a request that changes something (not a GET),
        retries included: when it says no, `SendCancelled` is raised and nothing left (a run's lease, as
        a fence: worker.run.fence)."""
        if not isinstance(api_key, Secret):
            raise TypeError("api_key must be a worker.privacy.secret.Secret")
        self._api_url = _api_url(base_url)
        self._api_key = api_key
        self._limiter = limiter
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_retries = max_retries
        self._max_rate_limited = max_rate_limited
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self._rng = rng or random.Random()
        self._on_request = on_request
        self._may_write = may_write
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"ActiveCampaignClient({self._api_url!r})"

    # Lifecycle ---------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool (idempotent)."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=64, ttl_dns_cache=300),
                headers={"Accept": "application/json", "User-Agent": "segment-export"},
                raise_for_status=False,
            )
        return self._session

    # Endpoints ---------------------------------------------------------------------------------------------

    async def bulk_import(self, contacts: list[dict[str, Any]], *,
                          proceed: Callable[[], bool] | None = None) -> BulkAccepted:
        """Queue `contacts` with POST import/bulk_import; returns AC's batchId.

        Contacts AC's validation refuses (a 400 naming them) are dropped, their reasons recorded by their
        index in `contacts`, and the rest resent. Once AC answered 200 nothing is ever resent.
        Raises ValueError for a request AC would refuse by size (that is a batching bug in the caller).
        ``proceed`` is asked each time the rate budget grants a slot, just before the request leaves: when
        it says no, ``SendCancelled`` is raised and nothing was sent (a run stopping at a checkpoint).
        """
        if not contacts:
            raise ValueError("bulk_import needs at least one contact")
        if len(contacts) > MAX_BULK_CONTACTS:
            raise ValueError(f"bulk_import takes at most {MAX_BULK_CONTACTS} contacts, got {len(contacts)}")
        positions = list(range(len(contacts)))
        rejected: dict[int, str] = {}
        label = "import/bulk_import"
        while positions:
            sent = [contacts[i] for i in positions]
            body = orjson.dumps({"contacts": sent})
            if len(body) > MAX_BULK_BODY_BYTES:
                raise ValueError(
                    f"bulk_import body is {len(body)} bytes; AC takes at most {MAX_BULK_BODY_BYTES}"
                )
            status, data = await self._call(
                "POST", "import/bulk_import", label=label, kind="bulk", body=body, contacts=len(sent),
                proceed=proceed,
            )
            if 200 <= status < 300:
                batch_id = data.get("batchId") if isinstance(data, dict) else None
                if not is_success(data) or not batch_id:
                    raise ActiveCampaignError(
                        "bad_response",
                        f"POST {label} answered {status} without a batchId",
                        status=status,
                        endpoint=label,
                    )
                return BulkAccepted(batch_id=str(batch_id), rejected=rejected)
            refused = contact_failures(data, sent) if status == 400 else {}
            if not refused:
                raise self._error(status, data, "POST", label)
            for position, reason in refused.items():
                rejected[positions[position]] = reason
            positions = [p for k, p in enumerate(positions) if k not in refused]
            log.info(
                "POST %s: AC's validation refused %d contact(s); resending the other %d",
                label,
                len(refused),
                len(positions),
            )
        return BulkAccepted(batch_id=None, rejected=rejected)

    async def import_info(self, batch_id: str) -> ImportInfo:
        """GET import/info for one batch. `status` may be False right after the POST."""
        label = "import/info"
        status, data = await self._call(
            "GET", "import/info", label=label, kind="other", params={"batchId": batch_id}
        )
        if status == 200:
            try:
                return parse_import_info(data)
            except ValueError as exc:
                raise ActiveCampaignError(
                    "bad_response", f"GET {label}: {exc}", status=status, endpoint=label
                ) from None
        raise self._error(status, data, "GET", label)

    async def unsubscribed_from_list(self, email: str, list_id: int) -> bool:
        """True when `email` is on list `list_id` with status unsubscribed (one "other" request).

        Used to tell "skipped because they unsubscribed" (never re-subscribe them) from other failures.
        """
        contacts = await self._contacts({"email": email, "listid": str(int(list_id)), "status": "2"})
        wanted = email.strip().lower()
        # The email filter is documented as a match, but guard against a "contains" reading on AC's side.
        with_email = [c for c in contacts if isinstance(c, dict) and "email" in c]
        if with_email:
            return any(str(c["email"]).strip().lower() == wanted for c in with_email)
        return bool(contacts)

    async def find_contact(self, email: str) -> dict[str, Any] | None:
        """The contact with exactly this email (AC's record), or None (one "other" request)."""
        contacts = await self._contacts({"email": email})
        wanted = email.strip().lower()
        for c in contacts:
            if isinstance(c, dict) and str(c.get("email", "")).strip().lower() == wanted and c.get("id"):
                return c
        return None

    async def _contacts(self, params: dict[str, str]) -> list[Any]:
        """One page of GET contacts with these filters (one "other" request)."""
        label = "contacts"
        status, data = await self._call("GET", "contacts", label=label, kind="other", params=params)
        if status != 200:
            raise self._error(status, data, "GET", label)
        contacts = data.get("contacts") if isinstance(data, dict) else None
        if not isinstance(contacts, list):
            raise ActiveCampaignError(
                "bad_response", f"GET {label} answered without contacts", status=status, endpoint=label
            )
        return contacts

    async def contact_lists(self, contact_id: str) -> list[dict[str, Any]]:
        """The contact's list memberships (GET contacts/{id}/contactLists); [] for an unknown contact."""
        label = "contacts/{id}/contactLists"
        status, data = await self._call(
            "GET", f"contacts/{int(contact_id)}/contactLists", label=label, kind="other"
        )
        if status == 404:
            return []
        records = data.get("contactLists") if isinstance(data, dict) else None
        if status != 200:
            raise self._error(status, data, "GET", label)
        if not isinstance(records, list):
            raise ActiveCampaignError(
                "bad_response", f"GET {label} answered without contactLists", status=status, endpoint=label
            )
        return [r for r in records if isinstance(r, dict)]

    async def subscribe(self, contact_id: str, list_id: int, *, sourceid: int = 4) -> tuple[bool, str]:
        """Subscribe a contact to a list through POST contactLists (status 1; ``sourceid`` 4 = re-subscribe).

        Unlike bulk import this DOES re-subscribe someone who unsubscribed, so callers must have checked
        that the unsubscription was not the person's own. Returns (True, "") when AC subscribed it, or
        (False, AC's reason) when AC refused it for this contact (4xx other than auth); raises otherwise.
        """
        return await self._list_status(contact_id, list_id, {"status": 1, "sourceid": sourceid})

    async def unsubscribe(self, contact_id: str, list_id: int) -> tuple[bool, str]:
        """Unsubscribe a contact from a list through POST contactLists (status 2), as an API client does (the
        record's campaign, message, reason and automation stay empty). Answers as ``subscribe``."""
        return await self._list_status(contact_id, list_id, {"status": 2})

    async def _list_status(self, contact_id: str, list_id: int, fields: dict[str, int]) -> tuple[bool, str]:
        label = "contactLists"
        body = orjson.dumps({"contactList": {"list": int(list_id), "contact": int(contact_id), **fields}})
        status, data = await self._call("POST", "contactLists", label=label, kind="other", body=body)
        if 200 <= status < 300:
            return True, ""
        if status in (401, 403):
            raise self._error(status, data, "POST", label)
        if 400 <= status < 500:
            return False, self._redact(message_of(data)) or f"HTTP {status}"
        raise self._error(status, data, "POST", label)

    async def get_list(self, list_id: int) -> dict[str, Any] | None:
        """The list's record, or None when AC has no list with that id."""
        label = "lists/{id}"
        status, data = await self._call("GET", f"lists/{int(list_id)}", label=label, kind="other")
        if status == 404:
            return None
        if status == 200 and isinstance(data, dict) and isinstance(data.get("list"), dict):
            return data["list"]
        if status == 200:
            raise ActiveCampaignError(
                "bad_response", f"GET {label} answered without a list", status=status, endpoint=label
            )
        raise self._error(status, data, "GET", label)

    async def custom_fields(self) -> list[dict[str, Any]]:
        """Every custom field of the account, all pages (limit=100, offset=...) until meta.total.

        AC lists a field's option *ids* in ``options`` and side-loads the values in ``fieldOptions``; each
        field with options gets their values, in AC's order, as ``option_values`` (dropdown and
        multi-value fields are checked against them).
        """
        label = "fields"
        fields: list[dict[str, Any]] = []
        options: list[Any] = []
        for _ in range(MAX_PAGES):
            status, data = await self._call(
                "GET",
                "fields",
                label=label,
                kind="other",
                params={"limit": str(PAGE_LIMIT), "offset": str(len(fields))},
            )
            if status != 200:
                raise self._error(status, data, "GET", label)
            page = data.get("fields") if isinstance(data, dict) else None
            if not isinstance(page, list):
                raise ActiveCampaignError(
                    "bad_response", f"GET {label} answered without fields", status=status, endpoint=label
                )
            fields.extend(f for f in page if isinstance(f, dict))
            side = data.get("fieldOptions")
            if isinstance(side, list):
                options.extend(side)
            meta = data.get("meta")
            total = _int_or_none(meta.get("total")) if isinstance(meta, dict) else None
            if (
                not page
                or (total is not None and len(fields) >= total)
                or (total is None and len(page) < PAGE_LIMIT)
            ):
                return _with_option_values(fields, options)
        raise ActiveCampaignError("bad_response", f"GET {label}: more than {MAX_PAGES} pages", endpoint=label)

    async def check_key(self) -> None:
        """One cheap call (GET lists?limit=1) that proves host and key work.

        Raises ActiveCampaignError(code="auth") on 401 or a bad-key 403. A 403 in AC's permission shape
        means the key is valid but its user may not read lists: code "forbidden", which the caller should
        report as such (a sync to a list it cannot see would fail anyway).
        """
        label = "lists"
        status, data = await self._call("GET", "lists", label=label, kind="other", params={"limit": "1"})
        if 200 <= status < 300:
            return
        raise self._error(status, data, "GET", label)

    # The list as ActiveCampaign holds it (drift, verify), tags, erasure ----------------------------------

    async def list_subscribed_count(self, list_id: int) -> int:
        """How many contacts the list holds subscribed: ``meta.total`` of one page of one (one "other" request)."""
        label = "contacts"
        params = {"listid": str(int(list_id)), "status": "1", "limit": "1"}
        status, data = await self._call("GET", "contacts", label=label, kind="other", params=params)
        if status != 200:
            raise self._error(status, data, "GET", label)
        meta = data.get("meta") if isinstance(data, dict) else None
        total = _int_or_none(meta.get("total")) if isinstance(meta, dict) else None
        if total is None or total < 0:
            raise ActiveCampaignError("bad_response", f"GET {label} answered without meta.total", status=status,
                                      endpoint=label)
        return total

    async def list_page(self, list_id: int, status: int | None, after_id: int, *,
                        kind: RequestKind = "read") -> tuple[list[tuple[int, str]], int]:
        """One page (up to 100) of the list's contacts with ``status`` (1 subscribed, 2 unsubscribed, None
        any) whose id is greater than ``after_id``, in id order: ([(id, lower-cased email)], how many are
        left from here, this page included).

        By default a "read" request: it goes only while no poll or lookup of a run waits (``verify``).
        """
        label = "contacts"
        params = {"listid": str(int(list_id)), "orders[id]": "ASC", "id_greater": str(int(after_id)),
                  "limit": str(PAGE_LIMIT)}
        if status is not None:
            params["status"] = str(int(status))
        code, data = await self._call("GET", "contacts", label=label, kind=kind, params=params)
        if code != 200:
            raise self._error(code, data, "GET", label)
        rows = data.get("contacts") if isinstance(data, dict) else None
        meta = data.get("meta") if isinstance(data, dict) else None
        total = _int_or_none(meta.get("total")) if isinstance(meta, dict) else None
        if not isinstance(rows, list) or total is None:
            raise ActiveCampaignError("bad_response", f"GET {label} answered without contacts or meta.total",
                                      status=code, endpoint=label)
        page: list[tuple[int, str]] = []
        for row in rows:
            contact_id = _int_or_none(row.get("id")) if isinstance(row, dict) else None
            email = row.get("email") if isinstance(row, dict) else None
            if contact_id is None or not isinstance(email, str):
                raise ActiveCampaignError("bad_response", f"GET {label}: a contact without id or email",
                                          status=code, endpoint=label)
            page.append((contact_id, email.strip().lower()))
        if any(b[0] <= a[0] for a, b in itertools.pairwise(page)) or (page and page[0][0] <= after_id):
            raise ActiveCampaignError("bad_response", f"GET {label}: ids not ascending past id_greater",
                                      status=code, endpoint=label)
        return page, total

    async def list_record(self, contact_id: int, list_id: int, *, kind: RequestKind = "other") -> dict[str, Any] | None:
        """The contact's record for one list (GET contacts/{id}/contactLists), or None (no record, no contact)."""
        label = "contacts/{id}/contactLists"
        status, data = await self._call("GET", f"contacts/{int(contact_id)}/contactLists", label=label, kind=kind)
        if status == 404:
            return None
        records = data.get("contactLists") if isinstance(data, dict) else None
        if status != 200 or not isinstance(records, list):
            raise self._error(status, data, "GET", label) if status != 200 else ActiveCampaignError(
                "bad_response", f"GET {label} answered without contactLists", status=status, endpoint=label)
        return next((r for r in records if isinstance(r, dict) and str(r.get("list")) == str(int(list_id))), None)

    async def tag_id(self, name: str) -> str | None:
        """The id of the account's tag called ``name`` (ignoring case, as AC matches tags), or None."""
        label = "tags"
        status, data = await self._call("GET", "tags", label=label, kind="other",
                                        params={"filters[search][eq]": name, "limit": str(PAGE_LIMIT)})
        if status != 200:
            raise self._error(status, data, "GET", label)
        tags = data.get("tags") if isinstance(data, dict) else None
        if not isinstance(tags, list):
            raise ActiveCampaignError("bad_response", f"GET {label} answered without tags", status=status,
                                      endpoint=label)
        wanted = name.strip().casefold()
        for tag in tags:
            if isinstance(tag, dict) and str(tag.get("tag", "")).strip().casefold() == wanted and tag.get("id"):
                return str(tag["id"])
        return None

    async def contact_tags(self, contact_id: int) -> list[dict[str, Any]] | None:
        """The contact's tag links (GET contacts/{id}/contactTags: ``id`` is the link, ``tag`` the tag's id);
        None when AC has no such contact."""
        label = "contacts/{id}/contactTags"
        status, data = await self._call("GET", f"contacts/{int(contact_id)}/contactTags", label=label, kind="other")
        if status == 404:
            return None
        links = data.get("contactTags") if isinstance(data, dict) else None
        if status != 200:
            raise self._error(status, data, "GET", label)
        if not isinstance(links, list):
            raise ActiveCampaignError("bad_response", f"GET {label} answered without contactTags", status=status,
                                      endpoint=label)
        return [link for link in links if isinstance(link, dict)]

    async def remove_contact_tag(self, link_id: str) -> bool:
        """DELETE contactTags/{id}: True when AC removed the link, False when it was already gone (404)."""
        label = "contactTags/{id}"
        status, data = await self._call("DELETE", f"contactTags/{int(link_id)}", label=label, kind="other")
        if 200 <= status < 300:
            return True
        if status == 404:
            return False
        raise self._error(status, data, "DELETE", label)

    async def delete_contact(self, contact_id: int) -> bool:
        """DELETE contacts/{id} (erasure): True when AC deleted it, False when there was no such contact."""
        label = "contacts/{id}"
        status, data = await self._call("DELETE", f"contacts/{int(contact_id)}", label=label, kind="other")
        if 200 <= status < 300:
            return True
        if status == 404:
            return False
        raise self._error(status, data, "DELETE", label)

    # Transport ---------------------------------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        """The Api-Token header: the one and only place the key is revealed."""
        return {"Api-Token": self._api_key.reveal()}

    async def _call(
        self,
        method: str,
        path: str,
        *,
        label: str,
        kind: RequestKind,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        contacts: int = 0,
        proceed: Callable[[], bool] | None = None,
    ) -> tuple[int, Any]:
        """Send one request until AC gives an answer worth returning: (status, parsed JSON or None).

        Returns 2xx and non-retryable 4xx answers; handles 429 / bulk "Rate limit exceeded" (limiter
        backoff, bounded by max_rate_limited), 5xx, timeouts and connection errors (jittered backoff,
        bounded by max_retries); raises ActiveCampaignError when a bound is exhausted.
        """
        session = self._open()
        url = self._api_url + path
        headers = self._auth_headers()
        if body is not None:
            headers["Content-Type"] = "application/json"
        failures = 0
        slowed = 0
        while True:
            await self._limiter.acquire(kind)
            if proceed is not None and not proceed():
                raise SendCancelled(f"{method} {label} not sent: the run is stopping")
            if method != "GET" and self._may_write is not None and not self._may_write():
                raise SendCancelled(f"{method} {label} not sent: the run's lease may not outlast it")
            started = time.perf_counter()
            try:
                async with session.request(method, url, params=params, data=body, headers=headers) as resp:
                    raw = await resp.read()
                    status, retry_after = resp.status, resp.headers.get("Retry-After")
                    content_type = resp.headers.get("Content-Type", "")
            except TimeoutError:
                self._report(label, 0, started)
                code, what = "timeout", f"timed out after {self._timeout.total}s"
            except aiohttp.ClientError as exc:
                self._report(label, 0, started)
                code, what = "network", f"connection failed ({type(exc).__name__})"
            else:
                self._report(label, status, started)
                data = _loads(raw)
                if 200 <= status < 300 and data is None and raw:
                    raise _not_json(method, label, status, content_type, raw)
                if status == 429 or (status == 400 and is_rate_limit_message(data)):
                    slowed += 1
                    if slowed > self._max_rate_limited:
                        raise ActiveCampaignError(
                            "rate_limited",
                            f"{method} {label}: still rate limited after {slowed} answers",
                            status=status,
                            endpoint=label,
                        )
                    if status == 429 or retry_after:
                        pause = retry_after_seconds(retry_after)
                    else:
                        reasons = data.get("failureReasons") if isinstance(data, dict) else None
                        pause = bulk_rate_limit_pause(reasons, self._limiter.bulk_per_minute)
                    if status == 400 and contacts == 1:
                        # AC counts one-contact imports in a window of their own (20/min): only this
                        # request has to wait, the multi-contact imports and polls may carry on.
                        log.info(
                            "%s %s: one-contact import rate limited; it waits %.2fs", method, label, pause
                        )
                        await asyncio.sleep(pause)
                    else:
                        self._limiter.backoff(pause)
                        log.info(
                            "%s %s: rate limited (HTTP %d); everyone pauses %.2fs",
                            method,
                            label,
                            status,
                            pause,
                        )
                    continue
                if status < 500:
                    return status, data
                code, what = "server_error", f"HTTP {status}"
            failures += 1
            if failures > self._max_retries:
                raise ActiveCampaignError(
                    code,
                    f"{method} {label}: {what}; gave up after {failures} attempts",
                    status=status if code == "server_error" else None,
                    endpoint=label,
                )
            delay = jittered_backoff(failures - 1, base=self._retry_base, cap=self._retry_cap, rng=self._rng)
            log.warning(
                "%s %s: %s; retry %d/%d in %.2fs", method, label, what, failures, self._max_retries, delay
            )
            await asyncio.sleep(delay)

    def _report(self, label: str, status: int, started: float) -> None:
        """Hand one attempt to the metrics hook; a failing hook must never fail a sync."""
        if self._on_request is None:
            return
        try:
            self._on_request(label, status, time.perf_counter() - started)
        except Exception:
            log.exception("on_request hook failed (ignored)")

    def _error(self, status: int, data: Any, method: str, label: str) -> ActiveCampaignError:
        """An ActiveCampaignError for a final non-2xx answer, with AC's own short message (redacted)."""
        detail = self._redact(message_of(data))
        suffix = f": {detail}" if detail else ""
        if status == 401 or (status == 403 and not _is_permission_error(data)):
            code, text = "auth", "ActiveCampaign refused the API key (check the key and the account hostname)"
        elif status == 403:
            code, text = "forbidden", "the API key's user lacks a permission"
        elif status == 404:
            code, text = "not_found", "not found"
        else:
            code, text = "bad_request", "request refused"
        return ActiveCampaignError(
            code, f"{method} {label}: HTTP {status} {text}{suffix}", status=status, endpoint=label
        )

    def _redact(self, text: str) -> str:
        """Belt and braces: AC's bodies should never echo the key, but if one did it stops here."""
        key = self._auth_headers()["Api-Token"]
        return text.replace(key, "***") if key else text


def _api_url(base_url: str) -> str:
    """ "https://acct.api-us1.com" (or ".../api/3") -> "https://acct.api-us1.com/api/3/"."""
    base = base_url.strip().rstrip("/")
    if not base.startswith(("https://", "http://")):
        raise ValueError("base_url must start with https:// (or http:// for the local simulator)")
    if base.endswith("/api/3"):
        base = base[: -len("/api/3")]
    return base + "/api/3/"


def _loads(raw: bytes) -> Any:
    """Parsed JSON, or None for an empty or non-JSON body (e.g. a proxy's HTML error page)."""
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _not_json(method: str, label: str, status: int, content_type: str, raw: bytes) -> ActiveCampaignError:
    """A 2xx whose body is not JSON. AC has been seen answering a bad key with 200 and its HTML login
    page; a client that only checked the status would report success, so this is an authentication error."""
    head = raw[:512].lstrip().lower()
    if "html" in content_type.lower() or head.startswith((b"<!doctype", b"<html")):
        return ActiveCampaignError(
            "auth",
            f"{method} {label}: HTTP {status} with an HTML page instead of JSON: ActiveCampaign most likely refused "
            f"the API key (it answers a bad key with its login page); check the key and the account hostname",
            status=status,
            endpoint=label,
        )
    return ActiveCampaignError(
        "bad_response", f"{method} {label}: HTTP {status} with a body that is not JSON", status=status, endpoint=label
    )


def _is_permission_error(data: Any) -> bool:
    """AC's permission answers are {"errors": [...]}; a bad key is a bare {"message": ...}."""
    return isinstance(data, dict) and isinstance(data.get("errors"), list) and bool(data["errors"])


def _with_option_values(fields: list[dict[str, Any]], rows: list[Any]) -> list[dict[str, Any]]:
    """Attach side-loaded ``fieldOptions`` values to their fields as ``option_values`` (AC's order)."""
    by_field: dict[str, list[tuple[int, int, str]]] = {}
    for n, row in enumerate(rows):
        if isinstance(row, dict) and row.get("field") is not None and row.get("value") is not None:
            order = _int_or_none(row.get("orderid"))
            by_field.setdefault(str(row["field"]), []).append((order if order is not None else n, n, str(row["value"])))
    for f in fields:
        found = by_field.get(str(f.get("id")))
        if found:
            f["option_values"] = [value for _, _, value in sorted(found)]
    return fields


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
