"""The shapes the client hands back, and the parsing of AC's loosely specified answers into them.

Why separate from the HTTP code: AC's bodies vary (``success`` vs ``Success``, ``"1"`` vs ``1``, status
``false`` right after a POST, 1-based contact indexes "per one report"), and each variation is a pure
function of the body that deserves its own small test.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

#: import/info statuses after which AC does nothing more with a batch.
FINAL_STATUSES = frozenset({"completed", "failed", "interrupted"})

_FORBIDDEN_LOCAL = frozenset('"(),:;<>@[\\]')
_DOMAIN_DOT_LETTERS = re.compile(r"\.[A-Za-z]{2}")


@dataclass(frozen=True)
class BulkAccepted:
    """AC queued a bulk import.

    rejected: index in the caller's contacts list -> AC's reason, for contacts AC's validation refused;
    they were dropped and the rest resent. batch_id is None when nothing was left to send.
    """

    batch_id: str | None
    rejected: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportInfo:
    """One answer of GET import/info. `status` may be the boolean False right after the POST."""

    status: str | bool
    final: bool
    success_ids: list[str]
    failure_emails: list[str]


def is_success(body: Any) -> bool:
    """AC spells the flag ``success`` (and once ``Success``), as 1, "1" or true."""
    if not isinstance(body, dict):
        return False
    flag = body.get("success")
    if flag is None:
        flag = body.get("Success")
    return flag is True or str(flag).strip().lower() in {"1", "true"}


def is_rate_limit_message(body: Any) -> bool:
    """The bulk endpoint reports its per-minute limit as a 400 whose message says so."""
    return isinstance(body, dict) and "rate limit" in str(body.get("message", "")).lower()


def parse_import_info(body: Any) -> ImportInfo:
    """import/info's body -> ImportInfo; raises ValueError when it has no status at all."""
    if not isinstance(body, dict) or "status" not in body:
        raise ValueError("import/info answered without a status")
    raw = body["status"]
    status: str | bool = raw.strip().lower() if isinstance(raw, str) else bool(raw)
    final = isinstance(status, str) and status in FINAL_STATUSES
    return ImportInfo(
        status=status,
        final=final,
        success_ids=[str(x) for x in _as_list(body.get("success"))],
        failure_emails=[_failure_email(x) for x in _as_list(body.get("failure"))],
    )


def contact_failures(body: Any, sent: Sequence[dict[str, Any]]) -> dict[int, str]:
    """From a 400 validation answer: position in `sent` (0-based) -> AC's reason.

    AC's `contact` is 1-based "per one report" and officially undocumented. When the reason is about the
    email and the 1-based reading points at a valid address while the 0-based one points at an invalid
    one, the 0-based reading wins: dropping the wrong contact would lose a good one and keep the bad one.
    Returns {} when the body names no contact we can place (the caller then treats it as a plain 400).
    """
    reasons = body.get("failureReasons") if isinstance(body, dict) else None
    out: dict[int, str] = {}
    for item in _as_list(reasons):
        if not isinstance(item, dict) or "contact" not in item:
            continue
        try:
            number = int(item["contact"])
        except (TypeError, ValueError):
            continue
        reason = str(
            item.get("failureReason") or item.get("message") or "rejected by ActiveCampaign validation"
        )
        index = _place(number, reason, sent)
        if index is None:
            return {}
        out.setdefault(index, reason)
    return out


def _place(number: int, reason: str, sent: Sequence[dict[str, Any]]) -> int | None:
    one_based, zero_based = number - 1, number
    fits_one, fits_zero = 0 <= one_based < len(sent), 0 <= zero_based < len(sent)
    if fits_one and fits_zero and "email" in reason.lower():
        one_ok = is_valid_email(str(sent[one_based].get("email", "")))
        zero_ok = is_valid_email(str(sent[zero_based].get("email", "")))
        if one_ok and not zero_ok:
            return zero_based
    if fits_one:
        return one_based
    return zero_based if fits_zero else None


def is_valid_email(email: str) -> bool:
    """AC's documented email rule (only used to place validation errors; the engine validates earlier)."""
    if email.count("@") != 1:
        return False
    local, domain = email.split("@")
    if not local or any(ch in _FORBIDDEN_LOCAL for ch in local):
        return False
    return _DOMAIN_DOT_LETTERS.search(domain) is not None


def message_of(body: Any) -> str:
    """A short, printable summary of an error body (AC's `message`, or the first error's title/detail)."""
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            return body["message"][:200]
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return " ".join(str(first.get(k, "")) for k in ("title", "detail")).strip()[:200]
    return ""


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _failure_email(item: Any) -> str:
    """`failure` entries are emails; tolerate objects that carry one."""
    if isinstance(item, dict):
        return str(item.get("email", ""))
    return str(item)
