"""`SimClient`: a small synchronous client of the `/_sim/` inspection API.

Tests, the demo and the benchmarks check outcomes from plain synchronous code, often while an asyncio
worker runs elsewhere; urllib keeps this dependency-free and independent of any event loop. Proxies are
disabled explicitly because the simulator is always on loopback and an inherited HTTP_PROXY would
otherwise swallow the requests.
"""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any, Literal

import orjson

TIMEOUT = 30.0

#: How someone unsubscribes (`SimClient.unsubscribe`): the person's own way (a campaign email's link, a
#: form, an automation), or "api": as an API client would, leaving no trace of whose it was.
Unsubscribe = Literal["campaign", "form", "automation", "api"]


class SimClientError(RuntimeError):
    """The simulator refused a control request; `status` and the server's `message` are kept."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"simulator answered {status}: {text}")
        self.status = status
        self.text = text


class SimClient:
    """Inspect and steer a running simulator through `/_sim/` (never rate-limited, never logged)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # Reading ---------------------------------------------------------------------------------------------

    def members(self, list_id: int) -> dict[str, dict[str, Any]]:
        """email -> {"status","first_name","last_name","phone","fields","tags","id"}, everyone on the list."""
        found: dict[str, dict[str, Any]] = self._call("GET", f"/_sim/lists/{int(list_id)}/members")
        return found

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """The API request log: {"method","path","status","bytes","contacts","at"} in arrival order."""
        suffix = f"?since={int(since)}" if since else ""
        entries: list[dict[str, Any]] = self._call("GET", f"/_sim/requests{suffix}")
        return entries

    def stats(self) -> dict[str, Any]:
        """Counters: "resubscribed", "contacts", "batches" {...}, "requests", "rate_limited", ..."""
        return self._object("GET", "/_sim/stats")

    def settings(self) -> dict[str, Any]:
        """The simulator's current settings (as JSON: list ids are strings)."""
        return self._object("GET", "/_sim/settings")

    def contact(self, email: str) -> dict[str, Any] | None:
        """Everything about one contact (lists, fields, tags, bounced/excluded), or None when absent."""
        try:
            return self._object("GET", "/_sim/contacts/" + urllib.parse.quote(email, safe="@"))
        except SimClientError as exc:
            if exc.status == 404:
                return None
            raise

    def contact_list(self, email: str, list_id: int) -> dict[str, Any] | None:
        """The contact's record for the list exactly as `GET /api/3/contacts/{id}/contactLists` shows it
        (status "1"/"2", sdate, udate, campaign, message, unsubreason, unsubscribeAutomation, sourceid,
        ...), or None when the contact has never been on the list (or does not exist)."""
        query = urllib.parse.urlencode({"email": email, "list_id": int(list_id)})
        try:
            return self._object("GET", "/_sim/contact_list?" + query)
        except SimClientError as exc:
            if exc.status == 404:
                return None
            raise

    def batch(self, batch_id: str) -> dict[str, Any]:
        """One batch with per-contact failure reasons (more than AC's /import/info tells)."""
        return self._object("GET", "/_sim/batches/" + urllib.parse.quote(batch_id, safe=""))

    # Steering --------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Clear contacts, batches, tags, exclusions, the request log and the rate windows; keep settings."""
        self._call("POST", "/_sim/reset", {})

    def save(self, name: str) -> None:
        """Keep the account's data (contacts, lists, tags, exclusions) aside under ``name``."""
        self._call("POST", "/_sim/save", {"name": name})

    def restore(self, name: str) -> None:
        """Reset the account (as ``reset``) and put back the data saved under ``name``."""
        self._call("POST", "/_sim/restore", {"name": name})

    def configure(self, **knobs: Any) -> None:
        """Change SimSettings knobs at runtime (validated as a whole; a bad one raises, changes nothing)."""
        if "lists" in knobs and isinstance(knobs["lists"], dict):
            knobs["lists"] = {str(k): v for k, v in knobs["lists"].items()}
        if "api_keys" in knobs and isinstance(knobs["api_keys"], tuple):
            knobs["api_keys"] = list(knobs["api_keys"])
        self._call("POST", "/_sim/settings", knobs)

    def unsubscribe(self, email: str, list_id: int, how: Unsubscribe = "campaign") -> None:
        """Someone unsubscribes the contact from a list (the contact is created if absent).

        By default the person's own unsubscription through a campaign email's link (the record gets
        `campaign` and `message`); "form" sets `unsubreason`, "automation" `unsubscribeAutomation`;
        "api" leaves all four null, as an unsubscription made by an API client does.
        """
        self._call("POST", "/_sim/contacts/unsubscribe", {"email": email, "list_id": int(list_id), "how": how})

    def freeze_time(self, when: datetime | str | None) -> None:
        """Stamp records (cdate, udate, sdate, created_timestamp, ...) at `when` until told otherwise;
        None follows the wall clock again. A naive datetime or string is read as UTC."""
        value = when.isoformat() if isinstance(when, datetime) else when
        self.configure(frozen_time=value)

    def delete_contact(self, email: str) -> bool:
        """Someone deletes the contact in ActiveCampaign (it leaves every list, loses tags and values);
        False when there was no such contact."""
        try:
            self._call("POST", "/_sim/contacts/delete", {"email": email})
        except SimClientError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def exclude(self, email: str) -> None:
        """Put an address (or a pattern like '*@example.org') on the account's exclusion list."""
        self._call("POST", "/_sim/contacts/exclude", {"email": email})

    def add_contact(self, email: str, lists: dict[int, str] | None = None, **attrs: Any) -> None:
        """Seed a contact: lists {id: "subscribed"|"unsubscribed"}; attrs first_name, last_name, phone,
        customer_acct_name, fields {perstag_or_id: value}, tags [names], bounced (bool)."""
        body: dict[str, Any] = {"email": email, **attrs}
        if lists:
            body["lists"] = {str(k): v for k, v in lists.items()}
        self._call("POST", "/_sim/contacts", body)

    def add_field(self, title: str, type: str, perstag: str, options: list[str] | None = None) -> int:
        """Define a custom field; returns its id (the next free one)."""
        body: dict[str, Any] = {"title": title, "type": type, "perstag": perstag}
        if options is not None:
            body["options"] = list(options)
        return int(self._call("POST", "/_sim/fields", body)["id"])

    # Transport -------------------------------------------------------------------------------------------

    def _object(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        found: dict[str, Any] = self._call(method, path, body)
        return found

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = orjson.dumps(body) if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=TIMEOUT) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
                text = str(orjson.loads(text).get("message", text))
            raise SimClientError(exc.code, text) from None
        return orjson.loads(raw) if raw else None
