"""CloudEvents 1.0 (structured, binary) of our types and Event Grid's BlobCreated, read as the queue reads them."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from worker.events.cloudevents import event_id_for, from_binary, from_eventgrid, read_cloudevent
from worker.events.incoming import read_message
from worker.events.notifications import Notification
from worker.events.schemas import InvalidEvent

REFRESHED = {"segment": {"id": "vip"}, "refresh_id": "r-1",
             "snapshot": {"uri": "s3://cdp-exports/vip/2026-11-28/", "format": "csv"}}


def ce(type_: str = "segment.refreshed", data: Any = None, **extra: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": "A234-1234-1234", "source": "/cdp/segments", "type": type_,
            "time": "2026-11-28T14:05:00Z", "datacontenttype": "application/json",
            "data": REFRESHED if data is None else data, **extra}


def blob(api: str = "PutBlockList", url: str = "https://acct.blob.core.windows.net/ci/CustomerInsights_1/vip/model.json",
         type_: str = "Microsoft.Storage.BlobCreated", **data: Any) -> dict[str, Any]:
    """Event Grid's BlobCreated as a CloudEvent (Azure's documented example, trimmed)."""
    return {"specversion": "1.0", "type": type_,
            "source": "/subscriptions/x/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/acct",
            "id": "9aeb0fdf-c01e-0131-0922-9eb54906e209", "time": "2026-11-28T14:05:00.0000000Z",
            "subject": "/blobServices/default/containers/ci/blobs/CustomerInsights_1/vip/model.json",
            "data": {"api": api, "clientRequestId": "c", "requestId": "r", "eTag": "0x8D76C39E4407333",
                     "contentType": "application/json", "contentLength": 30, "blobType": "BlockBlob", "url": url,
                     "sequencer": "0000000000000000000000000000099240000000000c41c18", **data}}


def test_our_type_in_a_structured_cloudevent_is_our_event() -> None:
    event = read_message(orjson.dumps(ce()))
    assert isinstance(event, dict)
    assert event["type"] == "segment.refreshed" and event["version"] == 1
    assert event["occurred_at"] == "2026-11-28T14:05:00Z"  # from the CloudEvent's time
    assert event["id"] == event_id_for("/cdp/segments", "A234-1234-1234")
    assert event["snapshot"]["uri"] == "s3://cdp-exports/vip/2026-11-28/"


def test_source_and_id_make_the_event_id_so_a_duplicate_is_the_same_request() -> None:
    req = {"export": "vip-newsletter", "full": True}
    a = read_message(orjson.dumps(ce("export.requested", req)))
    b = read_message(orjson.dumps(ce("export.requested", req)))
    c = read_message(orjson.dumps(ce("export.requested", req, source="/other")))
    assert isinstance(a, dict) and isinstance(b, dict) and isinstance(c, dict)
    assert a["id"] == b["id"] != c["id"]


def test_binary_mode_headers_and_body_read_as_structured() -> None:
    headers = {"ce-specversion": "1.0", "ce-id": "x%201", "ce-source": "/cdp", "ce-type": "segment.refreshed",
               "ce-time": "2026-11-28T14:05:00Z", "Content-Type": "application/json; charset=utf-8"}
    event = read_cloudevent(from_binary(headers, REFRESHED))
    assert isinstance(event, dict) and event["id"] == event_id_for("/cdp", "x 1")


def test_blob_created_is_a_notification_of_an_azure_object() -> None:
    n = read_message(orjson.dumps(blob(url="https://acct.dfs.core.windows.net/ci/a%20b/model.json")))
    assert isinstance(n, Notification)
    (note,) = n.objects
    assert (note.store, note.bucket, note.key, note.action) == ("az", "ci@acct", "a b/model.json", "created")
    assert note.uri == "abfss://ci@acct.dfs.core.windows.net/a%20b/model.json"
    assert note.token == "sequencer:0000000000000000000000000000099240000000000c41c18"


@pytest.mark.parametrize(("api", "action"), [("FlushWithClose", "created"), ("CreateFile", "other"),
                                             ("PutBlob", "created"), ("SomethingNew", "other")])
def test_only_apis_that_finish_a_blob_count_as_created(api: str, action: str) -> None:
    n = read_cloudevent(blob(api))
    assert isinstance(n, Notification) and n.objects[0].action == action


def test_blob_deleted() -> None:
    n = read_cloudevent(blob(type_="Microsoft.Storage.BlobDeleted", api="DeleteBlob"))
    assert isinstance(n, Notification) and n.objects[0].action == "deleted"


def test_event_grid_schema_converts_to_a_cloudevent() -> None:
    item = {"topic": "/subscriptions/x/providers/Microsoft.Storage/storageAccounts/acct",
            "subject": "/blobServices/default/containers/ci/blobs/vip/model.json",
            "eventType": "Microsoft.Storage.BlobCreated", "eventTime": "2026-11-28T14:05:00Z", "id": "e1",
            "data": blob()["data"], "dataVersion": "", "metadataVersion": "1"}
    n = read_cloudevent(from_eventgrid(item))
    assert isinstance(n, Notification) and n.objects[0].bucket == "ci@acct"
    with pytest.raises(InvalidEvent, match="eventTime is required"):
        from_eventgrid({k: v for k, v in item.items() if k != "eventTime"})


@pytest.mark.parametrize(("body", "reason_class", "words"), [
    (ce() | {"specversion": "0.3"}, "unsupported_version", "specversion '0.3'"),
    ({k: v for k, v in ce().items() if k != "source"}, "schema", "CloudEvent: source is required"),
    (ce() | {"id": ""}, "schema", "CloudEvent: id is required"),
    (ce() | {"type": "com.example.other"}, "unknown_type", "'com.example.other'"),
    (ce() | {"datacontenttype": "text/csv"}, "schema", "datacontenttype must be application/json"),
    (ce(data=[1]), "schema", "data must be a JSON object"),
    (ce(data=REFRESHED | {"type": "export.requested"}), "schema", "data.type is 'export.requested'"),
    (ce(data={k: v for k, v in REFRESHED.items() if k != "refresh_id"}), "schema", "refresh_id is required"),
    (ce(data=REFRESHED | {"snapshot": {"uri": "s3://b/k", "format": "xml"}}), "schema",
     "snapshot.format must be one of jsonl, csv"),
    ({k: v for k, v in ce().items() if k != "time"}, "schema", "occurred_at is required"),
    (blob(url="https://evil.example.com/ci/x"), "schema", "data.url"),
    (blob(url="https://acct.blob.core.windows.net/ci"), "schema", "data.url"),
    ({k: v for k, v in blob().items() if k != "time"}, "schema", "time is required"),
    (blob(sequencer=None, eTag=None), "schema", "data.sequencer"),
])
def test_bad_cloudevents_name_the_field(body: dict, reason_class: str, words: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        read_message(orjson.dumps(body))
    assert info.value.reason_class == reason_class
    assert words in info.value.reason
