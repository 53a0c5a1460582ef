"""List the parts of a snapshot in S3: one object, or the part objects under a prefix."""

from __future__ import annotations

from typing import Any

from worker.clients.s3 import s3_client
from worker.snapshot.errors import SnapshotError
from worker.snapshot.formats import is_part_name
from worker.snapshot.local_parts import empty_folder_message
from worker.snapshot.parts import Part, ReadableStream

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


def _part(bucket: str, key: str, size: int, etag: str) -> Part:
    uri = f"s3://{bucket}/{key}"

    def open_object() -> ReadableStream:
        from botocore.exceptions import BotoCoreError, ClientError

        # IfMatch: read the very object that was listed, so identity and content cannot disagree.
        try:
            body: ReadableStream = s3_client().get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"]
            return body
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error(exc, uri, bucket) from exc

    return Part(key.rsplit("/", 1)[-1], uri, size, etag, open_object, _read_errors())


def _list_level(client: Any, bucket: str, prefix: str) -> tuple[list[Part], list[str]]:
    """Part objects whose key starts with ``prefix`` and has no further '/', plus skipped names."""
    parts: list[Part] = []
    others: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        for obj in page.get("Contents", ()):
            name = obj["Key"].rsplit("/", 1)[-1]
            if is_part_name(name):
                parts.append(_part(bucket, obj["Key"], obj["Size"], obj["ETag"]))
            elif name and not name.startswith((".", "_")):
                others.append(name)
        others.extend(p["Prefix"] for p in page.get("CommonPrefixes", ()))
    parts.sort(key=lambda part: part.source)
    return parts, others


def list_s3_parts(bucket: str, key: str) -> list[Part]:
    """The object ``key``, else the parts in folder ``key/``, else the parts whose key starts with ``key``.

    Why the folder is tried before the bare prefix: ``s3://b/exports/seg1`` must not also pick up
    ``exports/seg10/...``.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    uri = f"s3://{bucket}/{key}"
    client = s3_client()
    try:
        if key and not key.endswith("/"):
            try:
                head = client.head_object(Bucket=bucket, Key=key)
                return [_part(bucket, key, head["ContentLength"], head["ETag"])]
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) not in _NOT_FOUND:
                    raise
            parts, others = _list_level(client, bucket, key + "/")
            if not parts:
                parts, more = _list_level(client, bucket, key)
                others += more
        else:
            parts, others = _list_level(client, bucket, key)
    except (ClientError, BotoCoreError) as exc:
        raise _s3_error(exc, uri, bucket) from exc
    if not parts:
        raise SnapshotError(empty_folder_message(uri, others))
    return parts
