"""``locate``: the one function that decides what a location means. Every reader goes through it.

Rules, in this order, each applied once (so no encoding is ever read twice into something else):

1. parse: ``file:///abs/path``, ``file://./relative`` (or ``file://localhost/abs``), a plain path
   (operators type them; a path is not a URI, so it is not percent-decoded), ``s3://bucket/key``;
   any other scheme is refused.
2. percent-decode once (URIs only): from here ``%2e%2e`` is ``..`` and ``%2F`` is ``/``, while ``%252e``
   stays the three characters ``%2e``.
3. normalise the decoded path: empty segments (``//``) and ``.`` go, ``..`` removes the segment before
   it, and a ``..`` above the root is refused (it names nothing).
4. local paths: a relative one is taken from the working directory, then symbolic links are resolved
   (``os.path.realpath``): the location is where the bytes are, not where a link says they are. The
   readers open the resolved path, and refuse to follow a link that appears there later.

The result is a ``Location``: kind, root (the bucket; empty for local files), the path as decoded
segments, and whether it was written as a folder (trailing slash). Prefixes are made by the same
function, and ``is_under`` compares kind, root and whole segments, never text: ``s3://cdp-exports-evil``
is not under ``s3://cdp-exports``, ``/data/segments-other`` not under ``/data/segments``.

Extending it (later issues): a kind (Azure ``az://container/path``, ``abfss://container@account.dfs.
core.windows.net/path``) is one more branch of ``locate`` filling the same fields (root
``container@account``, the path's segments). A source of locations (a manifest's ``entries[].url``, a
CDM ``model.json`` partition, the key of an S3 notification, a ``_SUCCESS`` marker's folder) calls
``locate`` on what it names and checks the result with ``Prefixes.admit`` like the event's own URI.
Every new reader must take its Location from here: a reader that opens a path or key it parsed itself
is a second meaning of a location, and the gap between two meanings is how an event reads what it
must not.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, quote_from_bytes, unquote

from worker.privacy.masking import mask_credentials

Kind = Literal["file", "s3", "az"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: S3 bucket names, including legacy ones (capitals, '_'); never '/', '%' or a dot segment.
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Azure container and storage account names (lower case; the account's at most 24 letters and digits).
_CONTAINER = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
_ACCOUNT = re.compile(r"[a-z0-9]{3,24}")
_ADLS_HOST = re.compile(r"([a-z0-9]{3,24})\.(?:dfs|blob)\.core\.windows\.net")
_DOTS = (".", "..")


class LocationError(ValueError):
    """A location that names nothing the worker may read; the message names it and the fix."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where data lives, decoded and normalised: compare these, never the strings they came from."""

    kind: Kind
    root: str
    """The bucket (s3); the container (az), ``container@account`` when the URI named the account
    (``abfss://``); '' for local files."""
    segments: tuple[str, ...]
    """The path's segments, decoded, without '', '.' or '..' (local: resolved, no links left)."""
    folder: bool = False
    """Written with a trailing slash (or as the root): a folder or prefix, never one object."""

    @property
    def path(self) -> str:
        """The absolute local path (kind 'file'), without a trailing slash."""
        return "/" + "/".join(self.segments)

    @property
    def key(self) -> str:
        """The S3 key: '' for the bucket's top, ending in '/' for a folder."""
        key = "/".join(self.segments)
        return key + "/" if key and self.folder else key

    @property
    def uri(self) -> str:
        """The canonical URI; ``locate(location.uri) == location`` (names are percent-encoded once)."""
        tail = "/" if self.folder and self.segments else ""
        if self.kind == "file":  # as pathlib's as_uri(), so part URIs read the same as before
            return "file://" + quote_from_bytes(os.fsencode(self.path)) + tail
        path = quote("/".join(self.segments), safe="/") + tail
        if self.kind == "az":
            container, _, account = self.root.partition("@")
            return f"abfss://{container}@{account}.dfs.core.windows.net/{path}" if account else f"az://{container}/{path}"
        return f"s3://{self.root}/" + path

    def __str__(self) -> str:
        return self.uri

    def is_under(self, prefix: Location) -> bool:
        """Same kind, same root, and ``prefix``'s segments are this location's first segments (whole ones)."""
        n = len(prefix.segments)
        return self.kind == prefix.kind and self.root == prefix.root and self.segments[:n] == prefix.segments

    def child(self, name: str) -> Location:
        """The entry ``name`` directly inside this folder (a listed part); refused unless one plain segment."""
        if name in ("", *_DOTS) or "/" in name or "\x00" in name:
            raise LocationError(f"{name!r} is not an entry name inside {self.uri}")
        return Location(self.kind, self.root, (*self.segments, name))

    def as_folder(self) -> Location:
        return Location(self.kind, self.root, self.segments, True)


def locate(uri: str) -> Location:
    """What ``uri`` means: parse, decode once, normalise, resolve links (local). See the module docstring.

    Raises LocationError naming the location and the fix for anything that does not name one place.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise LocationError("the location is empty (give file:///absolute/path, a path or s3://bucket/key)")
    if _CONTROL.search(uri) or uri != uri.strip():
        raise LocationError(f"location {_show(uri)} holds a control character or surrounding spaces "
                            "(percent-encode them, e.g. %20, if a name really holds one)")
    m = _SCHEME.match(uri)
    if m is None:
        return _local(uri, uri)
    scheme, rest = m.group(1).lower(), uri[m.end():]
    if scheme == "file":
        return _file(rest, uri)
    if scheme == "s3":
        return _s3(rest, uri)
    if scheme in ("az", "abfss"):
        return _az(rest, uri, scheme)
    raise LocationError(f"location {_show(uri)} has unsupported scheme {scheme!r} (use file://, s3://, az:// or a "
                        "plain path)")


def _file(rest: str, uri: str) -> Location:
    if "?" in rest or "#" in rest:
        raise LocationError(f"location {_show(uri)} holds '?' or '#', which would start a query or fragment "
                            "in a file:// URI (write them as %3F and %23 if a name holds them)")
    host, slash, path = rest.partition("/")
    if not slash:
        raise LocationError(f"location {_show(uri)} names no file (use file:///absolute/path)")
    decoded = unquote("/" + path, errors="surrogateescape")  # any bytes: local names need not be UTF-8
    if host in ("", "localhost"):
        return _local(decoded, uri)
    if host in _DOTS:
        return _local(host + decoded, uri)
    raise LocationError(f"location {_show(uri)} names a remote host (use file:///absolute/path or a plain path)")


def _local(path: str, uri: str) -> Location:
    if "\x00" in path:
        raise LocationError(f"location {_show(uri)} holds a NUL character")
    if not path.startswith("/"):
        path = os.path.join(os.getcwd(), path)
    last = path.rsplit("/", 1)[-1]
    folder = last in ("", *_DOTS)
    lexical = _normalise(path.split("/"), uri)
    real = os.path.realpath("/" + "/".join(lexical))
    return Location("file", "", tuple(s for s in real.split("/") if s), folder or real == "/")


def _s3(rest: str, uri: str) -> Location:
    raw_bucket, _, raw_key = rest.partition("/")  # by hand: keys may hold '?' and '#'
    bucket = _decode(raw_bucket, uri)
    if not bucket:
        raise LocationError(f"location {_show(uri)} has no bucket (use s3://bucket/key)")
    if "@" in bucket or ":" in bucket:  # ':' : a password with '/' in it ends the "bucket" early (never echo it)
        raise LocationError(f"location {_show(uri)} holds credentials before the bucket; an S3 location is "
                            "s3://bucket/key (the worker takes AWS credentials from its environment)")
    if not _BUCKET.fullmatch(bucket):
        raise LocationError(f"location {_show(uri)}: {bucket[:100]!r} is not an S3 bucket name")
    key = _decode(raw_key, uri)
    if "\x00" in key:
        raise LocationError(f"location {_show(uri)} holds a NUL character")
    folder = key.rsplit("/", 1)[-1] in ("", *_DOTS)
    return Location("s3", bucket, _normalise(key.split("/"), uri), folder)


def _az(rest: str, uri: str, scheme: str) -> Location:
    """``az://container/path``, or ``abfss://container@account.dfs.core.windows.net/path`` as the portal shows it."""
    authority, _, raw_path = rest.partition("/")
    authority = _decode(authority, uri)
    if ":" in authority:  # user:password (its '/' may have cut it here): never echoed as a container name
        raise LocationError(f"location {_show(uri)} holds credentials before the container; an Azure location "
                            "is az://container/path (the worker takes Azure credentials from its environment)")
    if scheme == "abfss":
        container, at, host = authority.partition("@")
        m = _ADLS_HOST.fullmatch(host.lower())
        if not at or m is None:
            raise LocationError(f"location {_show(uri)} is not abfss://container@account.dfs.core.windows.net/path")
        root = f"{container}@{m.group(1)}"
    else:
        container = root = authority
    if not _CONTAINER.fullmatch(container):
        raise LocationError(f"location {_show(uri)}: {container[:100]!r} is not an Azure container name "
                            "(3-63 lower-case letters, digits and single hyphens)")
    path = _decode(raw_path, uri)
    if "\x00" in path:
        raise LocationError(f"location {_show(uri)} holds a NUL character")
    folder = path.rsplit("/", 1)[-1] in ("", *_DOTS)
    return Location("az", root, _normalise(path.split("/"), uri), folder)


def _decode(text: str, uri: str) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise LocationError(f"location {_show(uri)} is not UTF-8 once percent-decoded") from None


def _normalise(parts: list[str], uri: str) -> tuple[str, ...]:
    out: list[str] = []
    for segment in parts:
        if segment in ("", "."):
            continue
        if segment == "..":
            if not out:
                raise LocationError(f"location {_show(uri)} climbs above its root with '..'")
            out.pop()
        else:
            out.append(segment)
    return tuple(out)


def _show(uri: str) -> str:
    """The location for a message: credentials (``user:pass@``) masked, at most 200 characters."""
    return repr(show_uri(uri))


def show_uri(uri: str, limit: int = 200) -> str:
    """``uri`` as it may appear in a message or a log: ``user:pass@`` masked, cut at ``limit`` characters."""
    shown = mask_credentials(uri)
    return shown if len(shown) <= limit else shown[:limit] + "..."
