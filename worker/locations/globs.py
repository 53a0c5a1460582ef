"""Globs on decoded locations: a segment's ``triggers`` (``s3://cdp-exports/vip/*/_SUCCESS``).

Why globs on the decoded location, not on the text a notification carries: S3 URL-encodes keys in its
notifications (``+`` for a space, ``%3D`` for ``=``) and EventBridge does not; a pattern written the way
the object is named in the bucket matches both, once each key was decoded and normalised by ``locate``.

The syntax, as in shells and ``.gitignore``: ``*`` any run of characters inside one segment (never
``/``), ``**`` any run across segments, ``?`` one character other than ``/``, ``[abc]`` / ``[!abc]`` one
character of (not of) a set; everything else stands for itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from worker.locations.location import Location, LocationError

_SCHEMES = ("s3://",)


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
    if not pattern.startswith(_SCHEMES):
        raise LocationError(f"trigger {pattern[:200]!r} must start with s3:// and name the bucket, e.g. "
                            "\"s3://cdp-exports/vip/*/_SUCCESS\"")
    rest = pattern.split("://", 1)[1]
    bucket, slash, _ = rest.partition("/")
    if not slash or not bucket or any(c in bucket for c in "*?["):
        raise LocationError(f"trigger {pattern[:200]!r} must name one bucket (no wildcard in it) and a key "
                            "pattern after it, e.g. \"s3://cdp-exports/vip/*/_SUCCESS\"")
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
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
                raise LocationError(f"trigger {pattern[:200]!r}: '[' opens a character set that is never closed; "
                                    "close it with ']' or write a literal '[' as '[[]'")
            body = pattern[i + 1:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append("[" + ("^/" if negate else "") + body.replace("\\", "\\\\").replace("^", "\\^") + "]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return LocationGlob(pattern, re.compile("".join(out), re.DOTALL))
