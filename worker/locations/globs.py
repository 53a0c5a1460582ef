"""Globs on decoded locations: a segment's ``triggers`` (``s3://cdp-exports/vip/*/_SUCCESS``).

Why globs on the decoded location, not on the text a notification carries: S3 URL-encodes keys in its
notifications (``+`` for a space, ``%3D`` for ``=``) and EventBridge does not; a pattern written the way
the object is named in the bucket matches both, once each key was decoded and normalised by ``locate``.

The syntax, as in shells and ``.gitignore``: ``*`` any run of characters inside one segment (never
``/``), ``**`` any run across segments (``a/**/b`` also matches ``a/b``: zero or more folders),
``?`` one character other than ``/``, ``[abc]`` / ``[!abc]`` / ``[a-z]`` one character of (not of) a
set; everything else stands for itself.

Stores: ``s3://bucket/key-pattern``; Azure ``az://container/path-pattern`` (a container of the worker's
own storage account, as ``az://`` locations are) or ``abfss://container@account.dfs.core.windows.net/
path-pattern`` (that account's). The root (bucket, container, account) never holds a wildcard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from worker.locations.location import Location, LocationError, locate, show_uri

_SCHEMES = ("s3://", "az://", "abfss://")
_EXAMPLE = "\"s3://cdp-exports/vip/*/_SUCCESS\" or \"az://insights/CustomerInsights_*/vip/model.json\""


@dataclass(frozen=True)
class LocationGlob:
    """A compiled trigger pattern; ``matches`` takes a ``Location`` (decoded and normalised)."""

    pattern: str
    regex: re.Pattern[str]

    def matches(self, location: Location) -> bool:
        return self.regex.fullmatch(decoded_text(location)) is not None


def decoded_text(location: Location) -> str:
    """What a glob is matched against: the scheme, the root and the decoded segments, joined by ``/``."""
    if location.kind == "file":
        return "file://" + location.path
    return f"{location.kind}://{location.root}/" + "/".join(location.segments)


def compile_glob(pattern: str) -> LocationGlob:
    """The glob as a regular expression; LocationError naming the problem and the fix for a bad one."""
    shown = repr(show_uri(pattern))  # credentials masked: a trigger is echoed in config errors
    if not pattern.startswith(_SCHEMES):
        raise LocationError(f"trigger {shown} must start with s3://, az:// or abfss:// and name the bucket or "
                            f"container, e.g. {_EXAMPLE}")
    scheme, rest = pattern.split("://", 1)
    root_text, slash, key_pattern = rest.partition("/")
    if not slash or not root_text or any(c in root_text for c in "*?["):
        raise LocationError(f"trigger {shown} must name one bucket or container (no wildcard in it) and a path "
                            f"pattern after it, e.g. {_EXAMPLE}")
    try:  # the root as locate reads it: the same checks and the same form as the locations matched
        root = locate(f"{scheme}://{root_text}/x").root
    except LocationError:
        raise LocationError(
            f"trigger {shown}: the part before the first '/' is not an S3 bucket name or an Azure container "
            "(3-63 lower-case letters, digits, single hyphens); a trigger is s3://bucket/pattern, "
            "az://container/pattern or abfss://container@account.dfs.core.windows.net/pattern, and credentials "
            "never belong in it") from None
    kind = "az" if scheme in ("az", "abfss") else "s3"
    text = _translate(key_pattern, shown)
    try:
        regex = re.compile(re.escape(f"{kind}://{root}/") + text, re.DOTALL)
    except re.error as exc:
        raise LocationError(f"trigger {shown} is not a valid glob ({exc.msg}); check its [...] sets: a range "
                            "goes from the lower character to the higher one, e.g. [a-z]") from None
    return LocationGlob(pattern, regex)


def _translate(pattern: str, shown: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")  # zero or more whole folders
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise LocationError(f"trigger {shown}: '[' opens a character set that is never closed; "
                                    "close it with ']' or write a literal '[' as '[[]'")
            body = pattern[i + 1:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append("[" + ("^/" if negate else "") + body.replace("\\", "\\\\").replace("^", "\\^") + "]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)
