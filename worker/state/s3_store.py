"""S3Store: the state store in an S3 bucket, under an optional key prefix.

Why S3's conditional writes: ``IfNoneMatch='*'`` (create only) and ``IfMatch=<etag>`` (replace only
that version) are atomic on the server, so workers on any number of hosts agree on who wrote a
record without a lock service. Every value is one PUT (S3 takes up to 5 GB per PUT), so a
tens-of-MB synced state is one request.
"""

from __future__ import annotations

import builtins
import time
from typing import Any

from worker.clients.s3 import s3_client
from worker.state.errors import StateError, WriteUnanswered
from worker.state.keys import check_key, check_prefix
from worker.state.store import StateStore

_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_PRECONDITION_FAILED = 412
_CONFLICT = 409  # a concurrent conditional write or delete: S3 asks for a retry
_CONFLICT_RETRIES = 5
_READ_RETRIES = 3


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _retried(exc: Any) -> bool:
    """botocore sent the request more than once: an earlier attempt may have been applied unanswered."""
    return int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0) > 0


class S3Store(StateStore):
    """Key ``k`` is the object ``<prefix>/k`` in ``bucket``."""

    def __init__(self, bucket: str, prefix: str = "") -> None:
        prefix = prefix.strip("/")
        if prefix:
            check_prefix(prefix + "/")
        self._bucket = bucket
        self._prefix = prefix + "/" if prefix else ""

    def __repr__(self) -> str:
        return f"S3Store({self._bucket!r}, {self._prefix!r})"

    def _object_key(self, key: str) -> str:
        return self._prefix + check_key(key)

    def _error(self, action: str, where: str, exc: Exception) -> StateError:
        """A StateError from a botocore exception: the code and S3's message, never request details."""
        from botocore.exceptions import ClientError

        if not isinstance(exc, ClientError):
            return StateError(f"cannot {action} {where}: {exc} (check the S3 endpoint and credentials)")
        code = _code(exc)
        if code == "NoSuchBucket":
            return StateError(
                f"cannot {action} {where}: bucket {self._bucket!r} does not exist "
                "(create it or fix state_url)"
            )
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return StateError(
                f"access denied: cannot {action} {where} ({code}; the worker needs s3:GetObject, "
                f"s3:PutObject, s3:DeleteObject and s3:ListBucket on bucket {self._bucket!r})"
            )
        message = exc.response.get("Error", {}).get("Message", "")
        return StateError(f"cannot {action} {where}: {code} {message}".rstrip())

    def get(self, key: str) -> bytes | None:
        found = self.get_versioned(key)
        return None if found is None else found[0]

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        from botocore.exceptions import BotoCoreError, ClientError
        from urllib3.exceptions import HTTPError

        object_key = self._object_key(key)
        for attempt in range(_READ_RETRIES):
            try:
                response = s3_client().get_object(Bucket=self._bucket, Key=object_key)
            except ClientError as exc:
                if _code(exc) in _NOT_FOUND:
                    return None
                raise self._error("read", self.uri(key), exc) from exc
            except BotoCoreError as exc:
                raise self._error("read", self.uri(key), exc) from exc
            body = response["Body"]
            try:
                return body.read(), response["ETag"]
            except (BotoCoreError, HTTPError, OSError) as exc:
                # botocore retries the request, not a body cut off mid-transfer: retry that here.
                if attempt + 1 == _READ_RETRIES:
                    raise self._error("read", self.uri(key), exc) from exc
            finally:
                body.close()
        raise AssertionError("unreachable")  # pragma: no cover

    def _put(self, key: str, data: bytes, **condition: str) -> bool:
        """PUT with an optional condition; False if S3 answers that the condition does not hold.

        A conditional PUT that got no answer (botocore gave up on a timeout or a cut connection, or S3
        answered 5xx) raises WriteUnanswered: it may have landed, and ``StateStore`` reads the key back. So
        does a 412 that botocore got on a retry (``RetryAttempts``): an earlier attempt may have landed, and
        the 412 may be S3 refusing our own write a second time.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        object_key = self._object_key(key)
        for attempt in range(_CONFLICT_RETRIES):
            try:
                s3_client().put_object(Bucket=self._bucket, Key=object_key, Body=data, **condition)
                return True
            except ClientError as exc:
                status, code = _status(exc), _code(exc)
                if condition and (status == _PRECONDITION_FAILED or code == "PreconditionFailed"):
                    if _retried(exc):
                        raise WriteUnanswered(f"{self.uri(key)}: 412 on a retried conditional PUT") from exc
                    return False
                if condition.get("IfMatch") and code in _NOT_FOUND:
                    return False  # deleted since it was read: not the version the caller saw
                if status == _CONFLICT and attempt + 1 < _CONFLICT_RETRIES:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                error = self._error("write", self.uri(key), exc)
                if condition and status >= 500:
                    raise WriteUnanswered(str(error)) from exc
                raise error from exc
            except BotoCoreError as exc:
                error = self._error("write", self.uri(key), exc)
                if condition:
                    raise WriteUnanswered(str(error)) from exc
                raise error from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def put(self, key: str, data: bytes) -> None:
        self._put(key, data)

    def _put_if_absent(self, key: str, data: bytes) -> bool:
        return self._put(key, data, IfNoneMatch="*")

    def _replace_if_unchanged(self, key: str, data: bytes, version: str) -> bool:
        return self._put(key, data, IfMatch=version)

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            s3_client().delete_object(Bucket=self._bucket, Key=self._object_key(key))
        except ClientError as exc:
            if _code(exc) not in _NOT_FOUND:
                raise self._error("delete", self.uri(key), exc) from exc
        except BotoCoreError as exc:
            raise self._error("delete", self.uri(key), exc) from exc

    def uri(self, key: str) -> str:
        return f"s3://{self._bucket}/{self._object_key(key)}"

    def list(self, prefix: str) -> list[str]:
        return [key for key, _ in self._objects(prefix)]

    def list_modified(self, prefix: str) -> builtins.list[tuple[str, float]]:
        return self._objects(prefix)

    def _objects(self, prefix: str) -> builtins.list[tuple[str, float]]:
        """(key, LastModified as unix time) of every object under ``prefix``, sorted by key."""
        from botocore.exceptions import BotoCoreError, ClientError

        check_prefix(prefix)
        found: builtins.list[tuple[str, float]] = []
        skip = len(self._prefix)
        try:
            pages = s3_client().get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=self._prefix + prefix
            )
            for page in pages:
                # A key ending in '/' is a console "folder" placeholder, not a value.
                found.extend((o["Key"][skip:], o["LastModified"].timestamp()) for o in page.get("Contents", ())
                             if not o["Key"].endswith("/"))
        except (ClientError, BotoCoreError) as exc:
            raise self._error("list", f"s3://{self._bucket}/{self._prefix}{prefix}", exc) from exc
        found.sort()
        return found
