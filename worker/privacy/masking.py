"""Masking personal data for logs and previews: ``alice@example.com`` -> ``a***@example.com``.

Why a module of its own: logging needs the mask and must not import the mapper (and through it the
config and the converters) to get it; this module imports nothing of ours.
"""

from __future__ import annotations


def mask_email(email: str) -> str:
    """``a***@example.com``: enough for a person to recognise a row in logs, not enough to leak it."""
    local, sep, domain = email.partition("@")
    if not sep:
        return (email[:1] + "***") if email else "***"
    return f"{local[:1]}***@{domain}"
