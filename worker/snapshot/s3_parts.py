"""List the parts of a snapshot in S3: one object, or the part objects of one folder.

The location comes from ``worker.locations.locate`` (decoded once, ``..``/``.``/``//`` resolved), and
what is listed and read is exactly its key: a name is an object or a folder (``name/``), never a bare
key prefix, which would also read the siblings that start with the same characters (``seg1.csv`` and
``seg10/...`` for ``seg1``).
"""

from __future__ import annotations

from typing import Any

from worker.clients.s3 import s3_client
from worker.locations import Location
from worker.snapshot.errors import SnapshotError
from worker.snapshot.formats import is_part_name
from worker.snapshot.local_parts import empty_folder_message
from worker.snapshot.parts import Part, ReadableStream
from worker.snapshot.ranged import RangedObject

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


def _read_errors() -> tuple[type[BaseException], ...]:
    """What reading a StreamingBody may raise mid-stream (resets, timeouts, short bodies)."""
    from botocore.exceptions import BotoCoreError
    from urllib3.exceptions import HTTPError

    return (BotoCoreError, HTTPError, OSError)


def _s3_error(exc: Exception, uri: str, bucket: str) -> SnapshotError:
    """A SnapshotError for a failed S3 call, with the fix that fits the error code."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return SnapshotError(
            f"cannot reach S3 for snapshot {uri}: {exc} (check the endpoint and credentials)", transient=True
        )
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    if code == "NoSuchBucket":
        return SnapshotError(f"snapshot not found: {uri} (bucket {bucket!r} does not exist; check the URI)")
    if code in _NOT_FOUND:
        return SnapshotError(f"snapshot not found: {uri} (check the URI, and that the export finished)")
    if code in ("403", "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return SnapshotError(
            f"permission denied reading snapshot {uri} ({code}; the worker needs s3:GetObject and "
            f"s3:ListBucket on bucket {bucket!r})"
        )
    if code in ("PreconditionFailed", "412"):
        return SnapshotError(
            f"snapshot {uri} changed while it was being read (retry once the upload is done)"
        )
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    transient = status >= 500 or code in ("SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable")
    return SnapshotError(f"cannot read snapshot {uri}: {code} {error.get('Message', '')}".rstrip(), transient=transient)


def _part(location: Location, size: int, etag: str) -> Part:
    bucket, key, uri = location.root, location.key, location.uri

    def open_object() -> ReadableStream:
        from botocore.exceptions import BotoCoreError, ClientError

        # IfMatch: read the very object that was listed, so identity and content cannot disagree.
        try:
            body: ReadableStream = s3_client().get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"]
            return body
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error(exc, uri, bucket) from exc

    def open_ranged() -> RangedObject:
        return RangedObject(s3_client(), bucket, key, etag, size, lambda exc: _s3_error(exc, uri, bucket))

    return Part(location.segments[-1], uri, size, etag, open_object, _read_errors(), open_ranged)


def _list_level(client: Any, folder: Location) -> tuple[list[Part], list[str]]:
    """Part objects directly inside ``folder`` (no further '/'), plus the names skipped."""
    parts: list[Part] = []
    others: list[str] = []
    prefix = folder.key
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=folder.root, Prefix=prefix, Delimiter="/"):
        for obj in page.get("Contents", ()):
            name = obj["Key"][len(prefix):]
            if is_part_name(name):
                parts.append(_part(folder.child(name), obj["Size"], obj["ETag"]))
            elif name and not name.startswith((".", "_")):
                others.append(name)
        others.extend(p["Prefix"][len(prefix):] for p in page.get("CommonPrefixes", ()))
    parts.sort(key=lambda part: part.name)
    return parts, others


def _near(client: Any, location: Location) -> list[str]:
    """Names beside ``location`` that start like it (for the message only: they are never read)."""
    parent = Location("s3", location.root, location.segments[:-1], True)
    names: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=location.root, Prefix=location.key, Delimiter="/", PaginationConfig={"MaxItems": 5}):
        names += [o["Key"][len(parent.key):] for o in page.get("Contents", ())]
        names += [p["Prefix"][len(parent.key):] for p in page.get("CommonPrefixes", ())]
    return names[:5]


def list_s3_parts(location: Location) -> list[Part]:
    """The object at ``location``, else the parts in the folder of that name (a folder location: its parts)."""
    from botocore.exceptions import BotoCoreError, ClientError

    uri, bucket = location.uri, location.root
    client = s3_client()
    near: list[str] = []
    try:
        if not location.folder:
            try:
                head = client.head_object(Bucket=bucket, Key=location.key)
                return [_part(location, head["ContentLength"], head["ETag"])]
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) not in _NOT_FOUND:
                    raise
        parts, others = _list_level(client, location.as_folder())
        if not parts and not others and not location.folder:
            near = _near(client, location)
    except (ClientError, BotoCoreError) as exc:
        raise _s3_error(exc, uri, bucket) from exc
    if near:
        raise SnapshotError(
            f"snapshot not found: {uri} is neither an object nor a folder; beside it are {', '.join(near)} "
            f"(name the object or the folder exactly: a key prefix is not read, it would take in siblings)")
    if not parts:
        raise SnapshotError(empty_folder_message(uri, others))
    return parts


def s3_object_part(location: Location) -> Part:
    """The object at ``location`` (a file a manifest or model.json lists); SnapshotError if there is none."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        head = s3_client().head_object(Bucket=location.root, Key=location.key)
    except (ClientError, BotoCoreError) as exc:
        raise _s3_error(exc, location.uri, location.root) from exc
    return _part(location, head["ContentLength"], head["ETag"])


def s3_object_exists(location: Location) -> bool:
    """An object is at ``location`` (a ``_SUCCESS`` marker)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3_client().head_object(Bucket=location.root, Key=location.key)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in _NOT_FOUND:
            return False
        raise _s3_error(exc, location.uri, location.root) from exc
    except BotoCoreError as exc:
        raise _s3_error(exc, location.uri, location.root) from exc
    return True


def read_s3_document(location: Location, limit: int) -> bytes:
    """The bytes of a small object that describes a snapshot (a manifest, a model.json), at most ``limit``."""
    from botocore.exceptions import ClientError

    try:
        data: bytes = s3_client().get_object(Bucket=location.root, Key=location.key)["Body"].read(limit + 1)
    except (ClientError, *_read_errors()) as exc:
        raise _s3_error(exc, location.uri, location.root) from exc
    if len(data) > limit:
        raise SnapshotError(f"snapshot {location.uri} is over {limit >> 20} MiB, too big for a manifest or model.json")
    return data
