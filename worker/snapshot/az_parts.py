"""List and open the parts of a snapshot on Azure Blob Storage / ADLS Gen2: one blob, or the blobs of a folder.

The same rules as S3 (``s3_parts``): the location comes from ``worker.locations.locate``; a name is one
blob or one folder (``name/``), never a bare name prefix; a folder's parts are the blobs directly in it
whose names are part names; each part is read as the version that was listed (``If-Match`` its ETag).
The client and its credentials come from ``worker.clients.azure`` (the extra ``segment-export[azure]``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from worker.clients.azure import AzureUnavailable, blob_service
from worker.locations import Location
from worker.snapshot.errors import SnapshotError
from worker.snapshot.formats import is_part_name
from worker.snapshot.local_parts import empty_folder_message
from worker.snapshot.parts import Part, ReadableStream
from worker.snapshot.ranged import RangedObject

#: How a CDM model.json written on Azure names its partitions: an absolute https URL of the account's endpoint.
_HTTPS = re.compile(r"^https://([a-z0-9]{3,24})\.(?:dfs|blob)\.core\.windows\.net(?::443)?/([^/?#]+)/([^?#]*)$",
                    re.IGNORECASE)


def azure_https_as_uri(url: str, document: Location) -> str | None:
    """The ``az://``/``abfss://`` URI an Azure https URL in a document names, in the document's own form (so it
    is compared with the document's folder and the prefixes as they are); None if ``url`` is no such URL.

    A document read by ``az://`` (the credentials' account) may only name that account's blobs.
    """
    m = _HTTPS.match(url)
    if m is None or document.kind != "az":
        return None
    account, container, path = m.group(1).lower(), m.group(2), m.group(3)
    named = document.root.partition("@")[2]
    if named:
        return f"abfss://{container}@{account}.dfs.core.windows.net/{path}"
    try:
        configured = blob_service().account_name
    except AzureUnavailable as exc:
        raise SnapshotError(f"snapshot {document.uri}: {exc}") from None
    if configured != account:
        raise SnapshotError(f"{document.uri} lists {url[:300]!r}, in storage account {account!r}, but the worker's "
                            f"Azure credentials are for {configured!r}")
    return f"az://{container}/{path}"


def _container(location: Location) -> Any:
    container, _, account = location.root.partition("@")
    try:
        return blob_service(account or None).get_container_client(container)
    except AzureUnavailable as exc:
        raise SnapshotError(f"snapshot {location.uri}: {exc}") from None


def _az_error(exc: Exception, uri: str) -> SnapshotError:
    """A SnapshotError for a failed Azure call, with the fix that fits; credentials never appear in it."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

    if isinstance(exc, ResourceNotFoundError):
        return SnapshotError(f"snapshot not found: {uri} (check the URI, and that the export finished)")
    if isinstance(exc, ClientAuthenticationError) or getattr(exc, "status_code", None) == 403:
        return SnapshotError(f"permission denied reading snapshot {uri} (the worker's Azure identity needs the "
                             "Storage Blob Data Reader role on the container)")
    if isinstance(exc, HttpResponseError) and exc.status_code == 412:
        return SnapshotError(f"snapshot {uri} changed while it was being read (retry once the upload is done)")
    status = getattr(exc, "status_code", None) or 0
    transient = not isinstance(exc, HttpResponseError) or status >= 500 or status in (408, 429)
    reason = getattr(exc, "reason", None) or type(exc).__name__
    return SnapshotError(f"cannot read snapshot {uri}: {status or ''} {reason}".replace("  ", " "), transient=transient)


def _errors() -> tuple[type[Exception], ...]:
    from azure.core.exceptions import AzureError

    return (AzureError,)


class _Chunks:
    """A downloader's chunks as a ``read(n)`` stream (the parsers read their own block sizes)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._buffer = chunks, b""

    def read(self, size: int = -1, /) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def close(self) -> None:
        self._buffer = b""


def _part(location: Location, size: int, etag: str) -> Part:
    uri, name = location.uri, "/".join(location.segments)

    def condition() -> dict[str, Any]:
        from azure.core import MatchConditions

        return {"etag": etag, "match_condition": MatchConditions.IfNotModified}

    def open_blob() -> ReadableStream:
        container = _container(location)
        try:
            downloader = container.download_blob(name, **condition())
            return _Chunks(iter(downloader.chunks()))
        except _errors() as exc:
            raise _az_error(exc, uri) from exc

    def fetch(start: int, end: int) -> bytes:
        container = _container(location)
        try:
            data: bytes = container.download_blob(name, offset=start, length=end - start + 1, **condition()).readall()
        except _errors() as exc:
            raise _az_error(exc, uri) from exc
        return data

    return Part(location.segments[-1], uri, size, etag, open_blob, _errors(), lambda: RangedObject(fetch, size, uri))


def az_object_part(location: Location) -> Part:
    """The blob at ``location``; SnapshotError if there is none."""
    container = _container(location)
    try:
        props = container.get_blob_client("/".join(location.segments)).get_blob_properties()
    except _errors() as exc:
        raise _az_error(exc, location.uri) from exc
    return _part(location, props.size, props.etag)


def az_object_exists(location: Location) -> bool:
    """A blob is at ``location`` (a ``_SUCCESS`` marker)."""
    container = _container(location)
    from azure.core.exceptions import ResourceNotFoundError

    try:
        container.get_blob_client("/".join(location.segments)).get_blob_properties()
    except ResourceNotFoundError:
        return False
    except _errors() as exc:
        raise _az_error(exc, location.uri) from exc
    return True


def read_az_document(location: Location, limit: int) -> bytes:
    """The bytes of a small blob that describes a snapshot (a manifest, a model.json), at most ``limit``."""
    part = az_object_part(location)
    if part.size > limit:
        raise SnapshotError(f"snapshot {location.uri} is over {limit >> 20} MiB, too big for a manifest or model.json")
    stream = part.opener()
    try:
        return stream.read()
    except _errors() as exc:
        raise _az_error(exc, location.uri) from exc
    finally:
        stream.close()


def list_az_parts(location: Location) -> list[Part]:
    """The blob at ``location``, else the parts in the folder of that name (a folder location: its parts)."""
    container = _container(location)
    from azure.core.exceptions import ResourceNotFoundError

    try:
        if not location.folder and location.segments:
            try:
                props = container.get_blob_client("/".join(location.segments)).get_blob_properties()
                return [_part(location, props.size, props.etag)]
            except ResourceNotFoundError as exc:
                if "ContainerNotFound" in str(getattr(exc, "error_code", "")):
                    raise
        folder = location.as_folder()
        prefix = folder.key
        parts: list[Part] = []
        others: list[str] = []
        for item in container.walk_blobs(name_starts_with=prefix or None, delimiter="/"):
            name = item.name[len(prefix):]
            if name.endswith("/"):
                others.append(name)
            elif is_part_name(name):
                parts.append(_part(folder.child(name), item.size, item.etag))
            elif name and not name.startswith((".", "_")):
                others.append(name)
    except _errors() as exc:
        raise _az_error(exc, location.uri) from exc
    if not parts:
        raise SnapshotError(empty_folder_message(location.uri, others))
    parts.sort(key=lambda part: part.name)
    return parts
