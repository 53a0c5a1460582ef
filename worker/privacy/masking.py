"""Masking personal data for logs and previews: ``alice@example.com`` -> ``a***@example.com``.

Why a module of its own: logging needs the mask and must not import the mapper (and through it the
config and the converters) to get it; this module imports nothing of ours.
"""

from __future__ import annotations

import re

EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
#: ``scheme://userinfo@`` anywhere in a text: a URL that carries a user and password (or a token).
#: Percent-encoded too, and with one slash (``https%3A/user%3Apass%40host``: a URL inside a normalised path).
#: A password may hold '/' (AWS secret keys do: ``s3://AKIA...:wJal/K7M/bPx@bucket``) and '@': after
#: ``user:`` everything up to the last '@' of the URL is masked (a later '@' in the path only widens the
#: mask). A user alone (``user@``) ends at the first '/', so ``s3://bucket/a@b.csv`` is not taken for one.
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*(?::|%3[Aa])(?:/{1,2}|(?:%2[Ff]){1,2}))"
                       r"([^/@\s'\"<>:]*(?::|%3[Aa])[^\s'\"<>]*|[^/@\s'\"<>]*?)(@|%40)")


def mask_email(email: str) -> str:
    """``a***@example.com``: enough for a person to recognise a row in logs, not enough to leak it."""
    local, sep, domain = email.partition("@")
    if not sep:
        return (email[:1] + "***") if email else "***"
    return f"{local[:1]}***@{domain}"


def mask_credentials(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` as ``scheme://***@``: user and password both go.

    Why the user too: in URLs that carry credentials the "user" is often a key id or a token. Applied to
    every location shown in a message and, by the log filter, to every log record.
    """
    return _USERINFO.sub(r"\1***\3", text) if "@" in text or "%40" in text else text


def mask_text(text: str) -> str:
    """Any text that may leave the process (a log line, an error in an event): URL credentials, then emails, masked.

    Credentials first: ``user:pass@host.com`` would otherwise half-match the email rule.
    """
    return EMAIL_RE.sub(_mask_match, mask_credentials(text)) if "@" in text or "%40" in text else text


def _mask_match(match: re.Match[str]) -> str:
    found = match.group(0)
    return found if not found.split("@", 1)[0].strip("/*") else mask_email(found)  # "//***@host": masked already
