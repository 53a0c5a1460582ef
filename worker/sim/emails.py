"""ActiveCampaign's email rule, applied exactly as documented (no stricter, no looser).

The client validates with the same rule before sending; if the simulator were stricter, a valid-by-the-
rule address would reject a whole 250-contact request with a 400, and if it were looser, client bugs
would go unnoticed. So this module encodes the four documented conditions and nothing else:
at least one character before '@'; exactly one '@'; none of ``"(),:;<>@[\\]`` in the local part; the
domain holds a '.' followed by at least two letters (checked anywhere in the domain, the lenient reading).
"""

from __future__ import annotations

import re

_FORBIDDEN_LOCAL = frozenset('"(),:;<>@[\\]')
_DOMAIN_DOT_LETTERS = re.compile(r"\.[A-Za-z]{2}")


def is_valid_email(email: str) -> bool:
    """True when `email` passes AC's documented format rule."""
    if email.count("@") != 1:
        return False
    local, domain = email.split("@")
    if not local or any(ch in _FORBIDDEN_LOCAL for ch in local):
        return False
    return _DOMAIN_DOT_LETTERS.search(domain) is not None


def normalize_email(email: str) -> str:
    """The key contacts are stored under: AC treats addresses case-insensitively and stores them lower."""
    return email.lower()
