"""Shared fixtures: real servers on loopback (moto for S3/SQS, our ActiveCampaign simulator)."""

from __future__ import annotations

import functools
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis' per-example deadline and its "input generation is slow" check are timing assertions: on a
# loaded machine running the suite on several workers they fail tests that are right. Off for the suite.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests marked ``slow`` first, the rest in their usual order.

    Why: ``make test`` runs the suite on several pytest-xdist workers, and its wall time is at least the
    time at which the longest test starts plus its own minutes; a two-minute test collected near the end
    would finish the run alone while the other workers sit idle.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: the rest keep their order


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's S3/SQS server over real HTTP on a free loopback port; yields its endpoint URL.

    boto3 clients created after this fixture pick the endpoint up from AWS_ENDPOINT_URL.
    """
    from moto.server import ThreadedMotoServer

    restore = _atomic_conditional_puts()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION="us-east-1")
    try:
        yield endpoint
    finally:
        server.stop()
        restore()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _atomic_conditional_puts() -> Callable[[], None]:
    """Make moto's conditional PUTs (``If-None-Match: *``, ``If-Match``) atomic, as they are on S3.

    Why: moto checks the precondition and then writes without a lock, so two threads of its server can
    both pass the check; under load the state store's exactly-one-winner tests then fail for moto's sake,
    not ours. Returns the function that puts moto's own method back.
    """
    from moto.s3.responses import S3Response

    original = S3Response.put_object
    lock = threading.Lock()

    @functools.wraps(original)
    def put_object(self: Any) -> Any:
        with lock:
            return original(self)

    S3Response.put_object = put_object  # type: ignore[method-assign]

    def restore() -> None:
        S3Response.put_object = original  # type: ignore[method-assign]

    return restore


@pytest.fixture
def s3_bucket(moto_server: str) -> str:
    """A fresh, empty bucket on the moto server; yields its name."""
    import uuid

    import boto3

    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Azurite (Azure Blob Storage) on a free loopback port for this session; yields its connection string."""
    from tests.azurite import install, running

    shared = tmp_path_factory.getbasetemp().parent  # one install per test run, shared by the xdist workers
    binary = install(shared / "azurite")
    with running(binary, free_port(), tmp_path_factory.mktemp("azurite-data")) as connection:
        yield connection


@pytest.fixture
def az_container(azurite: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh container on Azurite, the worker's Azure credentials pointing at it; yields its name."""
    import uuid

    from azure.storage.blob import BlobServiceClient

    for name in ("AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN",
                 "AZURE_STORAGE_BLOB_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    name = f"test-{uuid.uuid4().hex[:12]}"
    BlobServiceClient.from_connection_string(azurite).create_container(name)
    return name
