"""The process's S3 client (snapshots and the state store), created on first use.

Why lazily and cached per process and endpoint: creating a boto3 client costs tens of milliseconds
and must see the environment as it is when used (AWS_ENDPOINT_URL set by tests or the deployment),
not as it was at import; a forked worker must not share its parent's connection pool.
"""

from __future__ import annotations

import os
import threading
from typing import Any

_lock = threading.Lock()
_clients: dict[tuple[int, str | None, str | None], Any] = {}


def s3_client() -> Any:
    """A boto3 S3 client honouring AWS_ENDPOINT_URL and the default credential chain."""
    key = (os.getpid(), os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_ENDPOINT_URL_S3"))
    client = _clients.get(key)
    if client is None:
        with _lock:  # boto3's default session is not thread-safe while it builds a client
            client = _clients.get(key)
            if client is None:
                import boto3
                from botocore.config import Config

                config = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32)
                client = _clients[key] = boto3.client("s3", config=config)
    return client
