"""A conditional write whose answer is lost is resolved by reading back, in the store layer, for every backend.

On S3 the answer is lost on the wire: moto behind a proxy that forwards the PUT and cuts the connection
before its reply, so botocore retries and meets its own write (412). On Azure (Azurite behind the same
proxy) the conditional write is sent once, without the SDK's retries, and its lost answer is read back.
A backend of our own making (the folder store with its answers taken away) shows that the resolution
lives in ``StateStore`` and that a new backend gets it by saying only what its request got.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.run.walker.proxy import Action, FaultProxy, Seen
from worker.state import AzureStore, FileStore, S3Store, StateError, WriteUnanswered

KEY = "exports/vip/synced"


@pytest.fixture
def s3_through_proxy(s3_bucket: str, moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[S3Store, FaultProxy]]:
    with FaultProxy(moto_server) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        yield S3Store(s3_bucket, "state"), proxy


def lose_first_put(key: str, condition: str) -> tuple[list[Seen], object]:
    lost: list[Seen] = []

    def decide(seen: Seen) -> Action:
        if seen.method == "PUT" and seen.path.endswith(key) and condition in seen.headers and not lost:
            lost.append(seen)
            return Action.LOSE_REPLY
        return Action.FORWARD

    return lost, decide


@pytest.mark.parametrize("condition", ["If-None-Match", "If-Match"])
def test_s3_conditional_put_whose_reply_is_lost_is_written(s3_through_proxy, condition: str) -> None:
    store, proxy = s3_through_proxy
    version = None
    if condition == "If-Match":
        assert store.put_if_absent(KEY, b"one")
        found = store.get_versioned(KEY)
        assert found is not None
        version = found[1]
    lost, decide = lose_first_put(KEY, condition)
    proxy.decide = decide  # type: ignore[assignment]
    assert store.replace_if_unchanged(KEY, b"two", version) is True
    assert lost, "the conditional PUT was not met"
    puts = [x for x in proxy.log() if x.seen.method == "PUT"]
    assert [x.status for x in puts[-2:]] == [200, 412], "botocore's retry did not meet its own write"
    assert store.get(KEY) == b"two"


def test_s3_a_conditional_put_that_loses_is_not_written(s3_through_proxy) -> None:
    store, _ = s3_through_proxy
    assert store.put_if_absent(KEY, b"theirs")
    assert store.put_if_absent(KEY, b"ours") is False
    found = store.get_versioned(KEY)
    assert found is not None
    store.put(KEY, b"changed")
    assert store.replace_if_unchanged(KEY, b"ours", found[1]) is False
    assert store.get(KEY) == b"changed"


def test_s3_a_conditional_put_that_never_arrives_fails(s3_through_proxy) -> None:
    """Every attempt is cut before it reaches S3: the key is unchanged, so it is a failure, not "somebody won"."""
    store, proxy = s3_through_proxy
    proxy.decide = lambda seen: Action.REFUSE if seen.method == "PUT" else Action.FORWARD  # type: ignore[assignment]
    with pytest.raises(StateError):
        store.put_if_absent(KEY, b"ours")
    proxy.decide = lambda seen: Action.FORWARD  # type: ignore[assignment]
    assert store.get(KEY) is None


@pytest.fixture
def azure_through_proxy(az_container: str, azurite: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[AzureStore, FaultProxy]]:
    """Azurite behind the fault proxy, reached with a SAS (a shared-key signature covers headers the proxy
    rewrites; a SAS does not), through AZURE_STORAGE_ACCOUNT / _SAS_TOKEN / _BLOB_ENDPOINT."""
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    from tests.azurite import ACCOUNT, KEY

    endpoint = azurite.split("BlobEndpoint=", 1)[1].rstrip(";")
    sas = generate_account_sas(ACCOUNT, KEY, ResourceTypes(container=True, object=True),
                               AccountSasPermissions(read=True, write=True, delete=True, list=True, create=True),
                               datetime.now(UTC) + timedelta(hours=1))
    with FaultProxy(endpoint.rsplit("/", 1)[0]) as proxy:
        monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
        monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", ACCOUNT)
        monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", sas)
        monkeypatch.setenv("AZURE_STORAGE_BLOB_ENDPOINT", f"{proxy.url}/{ACCOUNT}")
        yield AzureStore(az_container, "state"), proxy


@pytest.mark.parametrize("condition", ["If-None-Match", "If-Match"])
def test_azure_conditional_put_whose_reply_is_lost_is_written(azure_through_proxy, condition: str) -> None:
    store, proxy = azure_through_proxy
    version = None
    if condition == "If-Match":
        assert store.put_if_absent(KEY, b"one")
        found = store.get_versioned(KEY)
        assert found is not None
        version = found[1]
    lost, decide = lose_first_put(KEY, condition)
    proxy.decide = decide  # type: ignore[assignment]
    assert store.replace_if_unchanged(KEY, b"two", version) is True
    assert lost, "the conditional PUT was not met"
    puts = [x for x in proxy.log() if x.seen.method == "PUT" and condition in x.seen.headers]
    assert len(puts) == 1, "a conditional write must be sent once (no SDK retry meeting its own write)"
    assert store.get(KEY) == b"two"


def test_azure_a_conditional_put_that_loses_is_not_written(azure_through_proxy) -> None:
    store, _ = azure_through_proxy
    assert store.put_if_absent(KEY, b"theirs")
    assert store.put_if_absent(KEY, b"ours") is False
    found = store.get_versioned(KEY)
    assert found is not None
    store.put(KEY, b"changed")
    assert store.replace_if_unchanged(KEY, b"ours", found[1]) is False
    assert store.get(KEY) == b"changed"


def test_azure_a_conditional_put_that_never_arrives_fails(azure_through_proxy) -> None:
    store, proxy = azure_through_proxy
    proxy.decide = lambda seen: Action.REFUSE if seen.method == "PUT" else Action.FORWARD  # type: ignore[assignment]
    with pytest.raises(StateError):
        store.put_if_absent(KEY, b"ours")
    proxy.decide = lambda seen: Action.FORWARD  # type: ignore[assignment]
    assert store.get(KEY) is None


class Unanswered(FileStore):
    """A backend whose conditional writes lose their answer: ``land`` says whether the write happens first."""

    def __init__(self, root: Path, land: bool) -> None:
        super().__init__(root)
        self.land = land

    def _put_if_absent(self, key: str, data: bytes) -> bool:
        if self.land:
            super()._put_if_absent(key, data)
        raise WriteUnanswered("no answer")

    def _replace_if_unchanged(self, key: str, data: bytes, version: str) -> bool:
        if self.land:
            super()._replace_if_unchanged(key, data, version)
        raise WriteUnanswered("no answer")


def test_any_backend_inherits_the_resolution(tmp_path: Path) -> None:
    plain = FileStore(tmp_path)
    landing = Unanswered(tmp_path, land=True)
    assert landing.put_if_absent(KEY, b"one") is True  # it landed: read back, ours
    version = plain.get_versioned(KEY)
    assert version is not None
    assert landing.replace_if_unchanged(KEY, b"two", version[1]) is True
    lost = Unanswered(tmp_path, land=False)
    current = plain.get_versioned(KEY)
    assert current is not None
    with pytest.raises(StateError):  # nothing changed: not "somebody else won"
        lost.replace_if_unchanged(KEY, b"three", current[1])
    plain.put(KEY, b"theirs")
    assert lost.replace_if_unchanged(KEY, b"three", current[1]) is False  # somebody else wrote
    assert plain.get(KEY) == b"theirs"
