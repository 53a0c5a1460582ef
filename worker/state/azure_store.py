"""AzureStore: the state store in an Azure Blob Storage container, under an optional name prefix.

Why it can be a state store at all: Blob Storage's conditional writes are atomic on the server, as S3's
are: ``If-None-Match: *`` (create only: ``upload_blob(overwrite=False)``) and ``If-Match: <etag>`` (replace
only that version), so replicas on any number of hosts agree on who wrote a record, and an Azure-only
company needs no S3 bucket. Every value is one Put Blob (up to 5000 MiB).

Lost answers: azure-core retries a request whose reply never came, and a retry of a conditional write that
had landed would meet its own write (409 BlobAlreadyExists, 412 ConditionNotMet) and look like a lost race;
the SDK does not say whether a refusal came after a retry. So conditional writes are sent without the SDK's
retries (``retry_total=0``): a refusal is then the server's answer to this very request (somebody else
won), and a timeout, a cut connection or a 5xx is ``WriteUnanswered``, which ``StateStore`` resolves by
reading the key back. (Treating every refusal as unanswered would not do: two writers storing equal bytes,
such as a counter's next value, would both believe they won.)
"""

from __future__ import annotations

import builtins
from typing import Any

from worker.clients.azure import AzureUnavailable, blob_service
from worker.state.errors import StateError, WriteUnanswered
from worker.state.keys import check_key, check_prefix
from worker.state.store import StateStore


class AzureStore(StateStore):
    """Key ``k`` is the blob ``<prefix>/k`` in ``container`` (of ``account``: None, the credentials' one)."""

    def __init__(self, container: str, prefix: str = "", account: str | None = None) -> None:
        prefix = prefix.strip("/")
        if prefix:
            check_prefix(prefix + "/")
        self._container_name, self._account = container, account
        self._prefix = prefix + "/" if prefix else ""

    def __repr__(self) -> str:
        return f"AzureStore({self._container_name!r}, {self._prefix!r})"

    def _container(self) -> Any:
        try:
            return blob_service(self._account).get_container_client(self._container_name)
        except AzureUnavailable as exc:
            raise StateError(f"state store az://{self._container_name}/{self._prefix}: {exc}") from None

    def _name(self, key: str) -> str:
        return self._prefix + check_key(key)

    def _error(self, action: str, where: str, exc: Exception) -> StateError:
        """A StateError from an Azure exception: status and reason only, never credentials."""
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

        if isinstance(exc, ResourceNotFoundError) and "ContainerNotFound" in str(getattr(exc, "error_code", "")):
            return StateError(f"cannot {action} {where}: container {self._container_name!r} does not exist "
                              "(create it or fix state_url)")
        if isinstance(exc, ClientAuthenticationError) or getattr(exc, "status_code", None) == 403:
            return StateError(f"access denied: cannot {action} {where} (the worker's Azure identity needs the "
                              f"Storage Blob Data Contributor role on container {self._container_name!r})")
        if isinstance(exc, HttpResponseError):
            return StateError(f"cannot {action} {where}: {exc.status_code} {exc.reason or ''}".rstrip())
        return StateError(f"cannot {action} {where}: {type(exc).__name__} (check the Azure endpoint and "
                          "credentials)")

    def get(self, key: str) -> bytes | None:
        found = self.get_versioned(key)
        return None if found is None else found[0]

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        container = self._container()
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            downloader = container.download_blob(self._name(key))
            data: bytes = downloader.readall()
        except ResourceNotFoundError as exc:
            if "ContainerNotFound" in str(getattr(exc, "error_code", "")):
                raise self._error("read", self.uri(key), exc) from exc
            return None
        except AzureError as exc:
            raise self._error("read", self.uri(key), exc) from exc
        return data, str(downloader.properties.etag)

    def _write(self, key: str, data: bytes, **condition: Any) -> bool:
        """One Put Blob: True; False when a conditional one is refused; WriteUnanswered when it got no answer."""
        container = self._container()
        from azure.core.exceptions import (
            AzureError,
            HttpResponseError,
            ResourceExistsError,
            ResourceModifiedError,
            ResourceNotFoundError,
        )

        conditional = condition.get("overwrite") is False or bool(condition.get("etag"))
        retries = {"retry_total": 0} if conditional else {}
        try:
            container.upload_blob(self._name(key), data, **condition, **retries)
            return True
        except (ResourceExistsError, ResourceModifiedError) as exc:
            if not conditional:
                raise self._error("write", self.uri(key), exc) from exc
            return False  # sent once (no retries): the answer to this request, so somebody else's write
        except ResourceNotFoundError as exc:
            if condition.get("etag") and "ContainerNotFound" not in str(getattr(exc, "error_code", "")):
                return False  # deleted since it was read: not the version the caller saw
            raise self._error("write", self.uri(key), exc) from exc
        except AzureError as exc:
            error = self._error("write", self.uri(key), exc)
            unanswered = not isinstance(exc, HttpResponseError) or (exc.status_code or 0) >= 500
            if conditional and unanswered:
                raise WriteUnanswered(str(error)) from exc
            raise error from exc

    def put(self, key: str, data: bytes) -> None:
        self._write(key, data, overwrite=True)

    def _put_if_absent(self, key: str, data: bytes) -> bool:
        return self._write(key, data, overwrite=False)

    def _replace_if_unchanged(self, key: str, data: bytes, version: str) -> bool:
        from azure.core import MatchConditions

        return self._write(key, data, overwrite=True, etag=version, match_condition=MatchConditions.IfNotModified)

    def delete(self, key: str) -> None:
        container = self._container()
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            container.delete_blob(self._name(key))
        except ResourceNotFoundError as exc:
            if "ContainerNotFound" in str(getattr(exc, "error_code", "")):
                raise self._error("delete", self.uri(key), exc) from exc
        except AzureError as exc:
            raise self._error("delete", self.uri(key), exc) from exc

    def uri(self, key: str) -> str:
        return f"az://{self._container_name}/{self._name(key)}"

    def list(self, prefix: str) -> list[str]:
        return [key for key, _ in self._blobs(prefix)]

    def list_modified(self, prefix: str) -> builtins.list[tuple[str, float]]:
        return self._blobs(prefix)

    def _blobs(self, prefix: str) -> builtins.list[tuple[str, float]]:
        """(key, last modified as unix time) of every blob under ``prefix``, sorted by key."""
        check_prefix(prefix)
        container = self._container()
        from azure.core.exceptions import AzureError

        skip = len(self._prefix)
        try:
            found = [(b.name[skip:], b.last_modified.timestamp())
                     for b in container.list_blobs(name_starts_with=(self._prefix + prefix) or None)
                     if not b.name.endswith("/")]
        except AzureError as exc:
            raise self._error("list", f"az://{self._container_name}/{self._prefix}{prefix}", exc) from exc
        found.sort()
        return found
