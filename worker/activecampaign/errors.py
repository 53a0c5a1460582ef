"""The one exception the ActiveCampaign client raises for anything AC (or the network) did wrong.

Why one class with a `code` and not a hierarchy: callers (the engine, `config check --online`, metrics)
branch on a handful of outcomes and put the code into events (`error.code`); a short stable string does
that better than isinstance chains. The message is written by us, never copied from a request, so it cannot
carry the API key; emails are never put into it either (they are personal data and end up in logs).
"""

from __future__ import annotations

#: Codes of failures that a later attempt may not meet (the client's own retries are exhausted).
TRANSIENT_CODES = frozenset({"server_error", "timeout", "network", "rate_limited"})


class ActiveCampaignError(Exception):
    """A request to ActiveCampaign failed for good (retries, if any, are exhausted).

    code: "auth" (401/403 on the key), "forbidden" (the key's user lacks a permission), "not_found",
    "bad_request" (4xx we cannot fix by retrying), "rate_limited", "server_error", "timeout", "network",
    "bad_response" (a 2xx whose body we cannot use).
    """

    def __init__(
        self, code: str, message: str, *, status: int | None = None, endpoint: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.endpoint = endpoint

    @property
    def transient(self) -> bool:
        """Worth retrying the run later: AC was unreachable, overloaded or slow, not refusing us."""
        return self.code in TRANSIENT_CODES

    def __repr__(self) -> str:
        return f"ActiveCampaignError(code={self.code!r}, status={self.status!r}, message={str(self)!r})"


class SendCancelled(Exception):
    """A request was not sent because its caller withdrew it (a run stopping at a checkpoint)."""
