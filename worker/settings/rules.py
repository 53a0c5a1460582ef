"""Value rules that the config check and the value converters share: date formats, tag length, URL shapes.

Why a module of its own: ``worker.contacts.fields`` reads profile dates with the ``date_format`` an export's
config names, and the config check must refuse a format that the converter could not read. Both import
the rule from here, so neither imports the other to get it (``fields`` may import ``config``; ``config``
never imports ``fields``). The patterns are written once and serve twice: the loader checks with them
and the generated JSON Schema carries them to editors.
"""

from __future__ import annotations

import re

LEASE_PER_REQUEST = 3
"""``lease_seconds`` is at least this many ActiveCampaign request timeouts: the lease is renewed every third
of its life and counted lost 15% early, so right before a renewal it has about half its life left, which
must cover a request in flight plus the record of its answer (``worker.run.fence``)."""

MAX_TAG = 255
"""ActiveCampaign's limit on a tag name; a longer "tag" is a data error (e.g. a text blob in the wrong column)."""

HOSTNAME_PATTERN = (r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
"""A DNS name of at least two labels (an account's API host), e.g. ``myaccount.api-us1.com``."""

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
LOOPBACK_URL_PATTERN = rf"^https?://(localhost|127(\.{_OCTET}){{3}}|\[::1\])(:[0-9]{{1,5}})?(/.*)?$"
"""An http(s) URL on this machine only: ``localhost``, ``127.x.y.z`` or ``[::1]`` (the simulator, tests)."""

REDIS_URL_PATTERN = r"^(redis|rediss|unix)://."
"""What redis-py's ``Redis.from_url`` reads: ``redis://`` (TCP), ``rediss://`` (TLS), ``unix://`` (socket)."""

DATE_FORMAT_PATTERN = r"^(?=.*YYYY)(?=.*MM)(?=.*DD)(YYYY|MM|DD|HH|mm|ss|[^A-Za-z0-9])+$"
"""The shape ``date_format_regex`` accepts, for the schema (it cannot say "each token at most once")."""

_TOKENS = (("YYYY", r"(?P<Y>\d{4})"), ("MM", r"(?P<m>\d{1,2})"), ("DD", r"(?P<d>\d{1,2})"),
           ("HH", r"(?P<H>\d{1,2})"), ("mm", r"(?P<M>\d{1,2})"), ("ss", r"(?P<S>\d{1,2})"))


class DateFormatError(ValueError):
    """A ``date_format`` in the config that cannot be read; the message says what is allowed."""


def date_format_regex(fmt: str) -> re.Pattern[str]:
    """``DD/MM/YYYY`` -> a pattern with named groups. Tokens: YYYY MM DD (required) and HH mm ss; anything
    else must be a separator (not a letter or digit). A regex and not ``strptime``: it is five times
    faster on the hot path, and reads exactly the tokens documented, nothing locale-dependent."""
    out: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(fmt):
        for token, group in _TOKENS:
            if fmt.startswith(token, i):
                if token in seen:
                    raise DateFormatError(f"{token} appears twice in {fmt!r}")
                seen.add(token)
                out.append(group)
                i += len(token)
                break
        else:
            ch = fmt[i]
            if ch.isalnum():
                raise DateFormatError(f"{fmt!r}: unknown letter {ch!r}; use YYYY, MM, DD (and HH, mm, ss) with "
                                      f"separators, e.g. \"DD/MM/YYYY\"")
            out.append(re.escape(ch))
            i += 1
    missing = [t for t in ("YYYY", "MM", "DD") if t not in seen]
    if missing:
        raise DateFormatError(f"{fmt!r} lacks {', '.join(missing)}; a date format needs YYYY, MM and DD")
    return re.compile("".join(out))
