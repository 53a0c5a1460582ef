"""The process's Azure Blob Storage clients (snapshots on Azure), created on first use, one per account.

Credentials come from the environment, in this order, and are never printed:

1. ``AZURE_STORAGE_CONNECTION_STRING`` (names its account, and its endpoint for an emulator);
2. ``AZURE_STORAGE_ACCOUNT`` with ``AZURE_STORAGE_KEY`` (an account key) or ``AZURE_STORAGE_SAS_TOKEN``;
3. ``AZURE_STORAGE_ACCOUNT`` alone: ``DefaultAzureCredential`` (managed identity, workload identity, the
   Azure CLI's login), where ``azure-identity`` is installed.

``AZURE_STORAGE_BLOB_ENDPOINT`` overrides ``https://<account>.blob.core.windows.net`` (an emulator, a private
endpoint). ``azure-storage-blob`` is the optional extra ``segment-export[azure]``; without it ``AzureUnavailable``
says how to install it.
"""

from __future__ import annotations

import os
import threading
from typing import Any

INSTALL = "pip install 'segment-export[azure]'"

_ENV = ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN",
        "AZURE_STORAGE_BLOB_ENDPOINT")
_lock = threading.Lock()
_clients: dict[tuple[Any, ...], Any] = {}


class AzureUnavailable(RuntimeError):
    """No Azure client can be made: the extra is missing or no credentials are configured (the message says)."""


def blob_service(account: str | None = None) -> Any:
    """A ``BlobServiceClient`` for ``account`` (None: the configured one); AzureUnavailable naming the fix."""
    try:
        from azure.storage.blob import BlobServiceClient
    except ImportError:
        raise AzureUnavailable(f"reading Azure Blob Storage needs azure-storage-blob: install the extra with "
                               f"{INSTALL}") from None
    env = {k: os.environ.get(k) for k in _ENV}
    key = (os.getpid(), account, *env.values())
    client = _clients.get(key)
    if client is not None:
        return client
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = _make(BlobServiceClient, account, env)
    return client


def _make(cls: Any, account: str | None, env: dict[str, str | None]) -> Any:
    if env["AZURE_STORAGE_CONNECTION_STRING"]:
        client = cls.from_connection_string(env["AZURE_STORAGE_CONNECTION_STRING"])
        _check_account(client.account_name, account)
        return client
    name = env["AZURE_STORAGE_ACCOUNT"] or account
    if not name:
        raise AzureUnavailable("no Azure storage credentials: set AZURE_STORAGE_CONNECTION_STRING, or "
                               "AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN (or with "
                               "azure-identity installed for DefaultAzureCredential)")
    _check_account(name, account)
    url = env["AZURE_STORAGE_BLOB_ENDPOINT"] or f"https://{name}.blob.core.windows.net"
    credential: Any
    if env["AZURE_STORAGE_KEY"]:
        credential = {"account_name": name, "account_key": env["AZURE_STORAGE_KEY"]}
    elif env["AZURE_STORAGE_SAS_TOKEN"]:
        credential = env["AZURE_STORAGE_SAS_TOKEN"]
    else:
        try:
            from azure.identity import DefaultAzureCredential
        except ImportError:
            raise AzureUnavailable("AZURE_STORAGE_ACCOUNT is set without AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, "
                                   "and azure-identity is not installed for DefaultAzureCredential (pip install "
                                   "azure-identity, or set a key, a SAS or a connection string)") from None
        credential = DefaultAzureCredential()
    return cls(account_url=url, credential=credential)


def _check_account(configured: str, named: str | None) -> None:
    if named is not None and configured != named:
        raise AzureUnavailable(f"the location names storage account {named!r} but the worker's Azure credentials "
                               f"are for {configured!r} (use az://container/path, or credentials for {named!r})")
