"""Issue 17, must-show 3: the HTTP ingress over real HTTP in front of a real RabbitMQ (through a TCP proxy
the test can cut). 1,000 POSTs from 20 concurrent clients -> 1,000 messages; a wrong token 401, an oversize
body 413, a malformed event 400 naming the field, and nothing published for them; the broker cut -> 503,
and once it is back the retried POSTs land, none lost; both webhook handshakes answered."""

from __future__ import annotations

import asyncio
import gzip
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import orjson
import pytest

from tests.broker.support import FlakyProxy
from tests.conftest import free_port
from tests.e2e.conftest import RabbitBroker
from tests.waiting import wait_for, wait_for_async
from worker.events.incoming import read_message
from worker.events.notifications import Notification
from worker.service.ingress import Ingress
from worker.service.tokens import Tokens
from worker.settings import parse_config

TOKEN = "ingress-token-" + "7f3a9c" * 5
OLD_TOKEN = "rotating-token-" + "1b2c3d" * 5
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def refreshed(i: int | str) -> dict[str, Any]:
    return {"type": "segment.refreshed", "version": 1, "id": f"ev-{i}", "occurred_at": "2026-11-28T14:05:00Z",
            "segment": {"id": "vip"}, "refresh_id": f"r-{i}", "snapshot": {"uri": "s3://cdp-exports/vip/x/"}}


@pytest.fixture
def proxy() -> Iterator[FlakyProxy]:
    p = FlakyProxy()
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
async def ingress(rabbit: RabbitBroker, proxy: FlakyProxy, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    monkeypatch.setenv("INGRESS_TEST_TOKENS", f"{TOKEN}, {OLD_TOKEN}")
    config = parse_config({"worker": {"broker_url": f"amqp://guest:guest@127.0.0.1:{proxy.port}//",
                                      "requests_queue": rabbit.requests_queue,
                                      "events_exchange": rabbit.events_exchange},
                           "ingress": {"tokens_env": "INGRESS_TEST_TOKENS", "max_body_bytes": 8192,
                                       "publish_timeout_seconds": 1.0}})
    ing = Ingress(config, tokens=Tokens("INGRESS_TEST_TOKENS", None))
    port = free_port()
    await ing.start("127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await ing.stop()


def queued(rabbit: RabbitBroker) -> list[bytes]:
    return [body for body, _ in rabbit._get_all(rabbit.requests_queue)]


async def test_1000_posts_from_20_clients_are_1000_messages(ingress: str, rabbit: RabbitBroker) -> None:
    async def client(c: int) -> list[int]:
        statuses = []
        async with aiohttp.ClientSession() as http:
            for k in range(50):
                i = c * 50 + k
                if i % 3 == 0:  # our JSON
                    r = await http.post(f"{ingress}/events", data=orjson.dumps(refreshed(i)), headers=AUTH)
                elif i % 3 == 1:  # structured CloudEvent of our type
                    ce = {"specversion": "1.0", "id": f"ce-{i}", "source": "/cdp", "type": "segment.refreshed",
                          "time": "2026-11-28T14:05:00Z", "data": {k: v for k, v in refreshed(i).items()
                                                                   if k not in ("type", "version", "id")}}
                    r = await http.post(f"{ingress}/events", data=orjson.dumps(ce),
                                        headers={**AUTH, "Content-Type": "application/cloudevents+json"})
                else:  # binary mode, the other token (rotation)
                    data = {k: v for k, v in refreshed(i).items() if k not in ("type", "version", "id", "occurred_at")}
                    r = await http.post(f"{ingress}/events", data=orjson.dumps(data), headers={
                        "Authorization": f"Bearer {OLD_TOKEN}", "Content-Type": "application/json",
                        "ce-specversion": "1.0", "ce-id": f"bin-{i}", "ce-source": "/cdp",
                        "ce-type": "segment.refreshed", "ce-time": "2026-11-28T14:05:00Z"})
                statuses.append(r.status)
                r.release()
        return statuses

    results = await asyncio.gather(*(client(c) for c in range(20)))
    assert [s for batch in results for s in batch] == [202] * 1000
    bodies = queued(rabbit)
    assert len(bodies) == 1000
    events = [read_message(b) for b in bodies]  # what the worker will read: each one valid
    assert sorted(e["refresh_id"] for e in events) == sorted(f"r-{i}" for i in range(1000))  # type: ignore[index]


async def test_refusals_publish_nothing_and_say_why(ingress: str, rabbit: RabbitBroker) -> None:
    async with aiohttp.ClientSession() as http:
        body = orjson.dumps(refreshed(1))
        for headers in ({}, {"Authorization": "Bearer wrong-token-0000000000000"}, {"Authorization": f"Basic {TOKEN}"}):
            async with http.post(f"{ingress}/events", data=body, headers=headers) as r:
                assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
                assert TOKEN not in await r.text()
        async with http.post(f"{ingress}/events", data=b"x" * 9000, headers=AUTH) as r:
            assert r.status == 413
        bad = refreshed(2)
        del bad["refresh_id"]
        async with http.post(f"{ingress}/events", data=orjson.dumps(bad), headers=AUTH) as r:
            assert r.status == 400
            answer = await r.json()
            assert answer["field"] == "refresh_id" and "refresh_id is required" in answer["error"]
        ce = {"specversion": "1.0", "id": "x", "type": "segment.refreshed", "data": {}}
        async with http.post(f"{ingress}/events", data=orjson.dumps(ce), headers=AUTH) as r:
            assert r.status == 400 and (await r.json())["field"] == "source"
        batch = [refreshed(3), {**refreshed(4), "snapshot": {"uri": "s3://b/k", "format": "xml"}}]
        async with http.post(f"{ingress}/events", data=orjson.dumps(batch), headers=AUTH) as r:
            assert r.status == 400  # a batch is all or nothing
            assert (await r.json())["field"] == "[1].snapshot.format"
        async with http.post(f"{ingress}/events", data=b"{not json", headers=AUTH) as r:
            assert r.status == 400 and (await r.json())["reason"] == "not_json"
        bomb = gzip.compress(b" " * (64 << 20))  # 64 MiB of blanks in about 64 KiB: refused unread
        for headers in (AUTH, {}):
            async with http.post(f"{ingress}/events", data=bomb,
                                 headers={**headers, "Content-Encoding": "gzip"}) as r:
                assert r.status == 415 and (await r.json())["reason"] == "content_encoding"
    assert queued(rabbit) == []


async def test_broker_down_503_then_retries_land_none_lost(ingress: str, rabbit: RabbitBroker,
                                                           proxy: FlakyProxy) -> None:
    events = [refreshed(f"outage-{i}") for i in range(8)]
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{ingress}/events", data=orjson.dumps(refreshed("before")), headers=AUTH) as r:
            assert r.status == 202
        proxy.cut()
        statuses = []
        for e in events:
            async with http.post(f"{ingress}/events", data=orjson.dumps(e), headers=AUTH) as r:
                statuses.append(r.status)
                if r.status == 503:
                    assert r.headers["Retry-After"]
        assert statuses == [503] * len(events)
        async with http.get(f"{ingress}/readyz") as r:
            assert r.status == 503
        proxy.restore()
        pending = list(events)

        async def retried() -> bool:  # the callers' retries, until every event is accepted
            for e in list(pending):
                async with http.post(f"{ingress}/events", data=orjson.dumps(e), headers=AUTH) as r:
                    if r.status == 202:
                        pending.remove(e)
                    else:
                        assert r.status == 503
            return not pending

        await wait_for_async(retried, 60, "every event accepted after the broker came back")
    ids = {read_message(b)["id"] for b in queued(rabbit)}  # type: ignore[index]
    assert ids == {"ev-before"} | {e["id"] for e in events}


async def test_hung_broker_503_in_time_and_a_timed_out_post_is_never_republished(
        ingress: str, rabbit: RabbitBroker, proxy: FlakyProxy) -> None:
    """A broker that stops answering (TCP open, nothing forwarded): each POST is answered 503 within
    publish_timeout_seconds (the client gives up far later, so a hang fails the test), the process keeps
    serving, and after the broker is back a POST that was answered 503 is not published behind the
    caller's back by a retry buffer (one POST must never become two messages)."""
    frozen = [refreshed(f"hung-{i}") for i in range(3)]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:  # 10x the 1 s bound
        async with http.post(f"{ingress}/events", data=orjson.dumps(refreshed("before")), headers=AUTH) as r:
            assert r.status == 202
        proxy.freeze()

        async def post(e: dict[str, Any]) -> int:
            async with http.post(f"{ingress}/events", data=orjson.dumps(e), headers=AUTH) as r:
                return r.status
        assert await asyncio.gather(*(post(e) for e in frozen)) == [503] * len(frozen)
        async with http.get(f"{ingress}/healthz") as r:
            assert r.status == 200
        proxy.thaw()

        async def landed() -> bool:  # the bridge reconnects; a later POST lands
            return await post(refreshed("after")) == 202

        await wait_for_async(landed, 60, "a POST accepted after the broker came back")
    ids: list[str] = []

    def drained() -> bool:
        ids.extend(read_message(b)["id"] for b in queued(rabbit))  # type: ignore[index]
        return "ev-after" in ids

    wait_for(drained, 30, "the POST made after the broker came back on the queue")
    assert ids.count("ev-before") == 1
    for e in frozen:  # 503 means "not confirmed": it may have landed once, never twice
        assert ids.count(e["id"]) <= 1, ids


async def test_webhook_handshakes_and_event_grid_blobs(ingress: str, rabbit: RabbitBroker) -> None:
    code = str(uuid.uuid4())
    validation = [{"id": "v1", "topic": "/subscriptions/x", "subject": "", "eventType":
                   "Microsoft.EventGrid.SubscriptionValidationEvent", "eventTime": "2026-11-28T14:05:00Z",
                   "data": {"validationCode": code, "validationUrl": "https://rp.example/validate"},
                   "dataVersion": "1", "metadataVersion": "1"}]
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{ingress}/events", data=orjson.dumps(validation),
                             headers={"aeg-event-type": "SubscriptionValidation"}) as r:
            assert r.status == 200 and await r.json() == {"validationResponse": code}
        async with http.options(f"{ingress}/events", headers={"WebHook-Request-Origin": "eventgrid.azure.net",
                                                              "WebHook-Request-Rate": "120"}) as r:
            assert r.status == 200 and r.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
        async with http.options(f"{ingress}/events", headers={"WebHook-Request-Origin": "evil.example"}) as r:
            assert r.status == 403 and "WebHook-Allowed-Origin" not in r.headers
        blob = {"id": "b1", "topic": "/subscriptions/x/providers/Microsoft.Storage/storageAccounts/acct",
                "subject": "/blobServices/default/containers/ci/blobs/vip/model.json",
                "eventType": "Microsoft.Storage.BlobCreated", "eventTime": "2026-11-28T14:05:00Z",
                "data": {"api": "PutBlockList", "eTag": "0x8D", "url":
                         "https://acct.blob.core.windows.net/ci/vip/model.json", "sequencer": "00000001"},
                "dataVersion": "", "metadataVersion": "1"}
        async with http.post(f"{ingress}/events", data=orjson.dumps([blob, {**blob, "id": "b2"}]), headers=AUTH) as r:
            assert r.status == 202 and await r.json() == {"accepted": 2}
    notes = [read_message(b) for b in queued(rabbit)]
    assert len(notes) == 2 and all(isinstance(n, Notification) for n in notes)
    assert notes[0].objects[0].uri == "abfss://ci@acct.dfs.core.windows.net/vip/model.json"  # type: ignore[union-attr]


async def test_an_authorization_header_that_is_not_utf8_is_401(ingress: str, rabbit: RabbitBroker) -> None:
    """Raw bytes on the wire (no client library would send them): a 401 naming the fix, never a 500."""
    host, port = ingress.removeprefix("http://").split(":")
    body = orjson.dumps(refreshed("raw"))
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
                 b"Authorization: Bearer \xff\xfe" + b"A" * 20 + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 401 Unauthorized", answer[:200]
    assert queued(rabbit) == []


async def test_a_rotated_tokens_file_with_a_typo_and_then_deleted(rabbit: RabbitBroker, tmp_path: Any) -> None:
    """The file gains a short entry: valid tokens still 202, others 401 (never 500). The file deleted:
    its tokens are revoked (401)."""
    path = tmp_path / "tokens"
    path.write_text(TOKEN + "\n")
    config = parse_config({"worker": {"broker_url": "amqp://guest:guest@127.0.0.1:5672//",
                                      "requests_queue": rabbit.requests_queue,
                                      "events_exchange": rabbit.events_exchange},
                           "ingress": {"tokens_env": "INGRESS_TEST_UNSET_TOKENS", "tokens_file": str(path)}})
    ing = Ingress(config)
    port = free_port()
    await ing.start("127.0.0.1", port)
    try:
        async with aiohttp.ClientSession() as http:
            async def post(token: str, i: int) -> int:
                async with http.post(f"http://127.0.0.1:{port}/events", data=orjson.dumps(refreshed(f"tok-{i}")),
                                     headers={"Authorization": f"Bearer {token}"}) as r:
                    return r.status
            path.write_text(TOKEN + "\nshort\n")
            os.utime(path, ns=(1, 2_000_000_000_000_000_000))
            assert [await post(TOKEN, 1), await post("x" * 40, 2), await post("short", 3)] == [202, 401, 401]
            path.unlink()
            assert await post(TOKEN, 4) == 401
    finally:
        await ing.stop()
    assert {read_message(b)["id"] for b in queued(rabbit)} == {"ev-tok-1"}  # type: ignore[index]
