"""Upstream notifications read into ObjectNotes: S3 direct, SNS-enveloped, raw SNS, EventBridge, test events."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from worker.events.notifications import MAX_RECORDS, read_notification
from worker.events.schemas import InvalidEvent


def s3_record(key: str = "vip/dt%3D2026-11-28/my+file/_SUCCESS", *, name: str = "ObjectCreated:Put",
              sequencer: str | None = "0055AED6DCD90281E5", etag: str = "d41d8cd98f00b204e9800998ecf8427e") -> dict:
    """A record as AWS documents it (notification-content-structure), key URL-encoded form style."""
    obj: dict[str, Any] = {"key": key, "size": 0, "eTag": etag, "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko"}
    if sequencer is not None:
        obj["sequencer"] = sequencer
    return {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-west-2",
            "eventTime": "2026-11-28T14:05:00.123Z", "eventName": name,
            "userIdentity": {"principalId": "AWS:AIDAJDPLRKLG7UEXAMPLE"},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "segments",
                   "bucket": {"name": "cdp-exports", "arn": "arn:aws:s3:::cdp-exports"}, "object": obj}}


def sns_envelope(inner: dict) -> dict:
    return {"Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:exports", "Subject": "Amazon S3 Notification",
            "Message": orjson.dumps(inner).decode(), "Timestamp": "2026-11-28T14:05:00.500Z",
            "SignatureVersion": "1", "Signature": "EXAMPLE", "SigningCertURL": "https://sns.example/cert.pem",
            "UnsubscribeURL": "https://sns.example/unsubscribe"}


def eventbridge(detail_type: str = "Object Created", key: str = "vip/dt=2026-11-28/my file/_SUCCESS") -> dict:
    return {"version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": detail_type,
            "source": "aws.s3", "account": "111122223333", "time": "2026-11-28T14:05:00Z", "region": "us-west-2",
            "resources": ["arn:aws:s3:::cdp-exports"],
            "detail": {"version": "0", "bucket": {"name": "cdp-exports"},
                       "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184",
                                  "sequencer": "00617F08299329D189"},
                       "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "reason": "PutObject"}}


TEST_EVENT = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-28T14:00:00.000Z",
              "Bucket": "cdp-exports", "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3e"}


def test_direct_record_decodes_the_key_and_takes_the_sequencer() -> None:
    n = read_notification({"Records": [s3_record()]})
    assert n is not None and n.shape == "s3" and not n.test_event
    (note,) = n.objects
    assert (note.bucket, note.key, note.action) == ("cdp-exports", "vip/dt=2026-11-28/my file/_SUCCESS", "created")
    assert note.token == "sequencer:0055AED6DCD90281E5"
    assert note.occurred_at == "2026-11-28T14:05:00.123Z"
    assert note.uri == "s3://cdp-exports/vip/dt%3D2026-11-28/my%20file/_SUCCESS"  # decoded once by locate


def test_moto_style_encoded_slashes_and_a_literal_percent_and_plus() -> None:
    """moto encodes '/' as %2F; '%2B' is a literal '+', '%25' a literal '%'."""
    (note,) = read_notification({"Records": [s3_record("vip%2Fa%2Bb%2F100%25%2F_SUCCESS")]}).objects  # type: ignore[union-attr]
    assert note.key == "vip/a+b/100%/_SUCCESS"
    assert note.uri == "s3://cdp-exports/vip/a%2Bb/100%25/_SUCCESS"


def test_without_a_sequencer_the_etag_names_the_write() -> None:
    (note,) = read_notification({"Records": [s3_record(sequencer=None)]}).objects  # type: ignore[union-attr]
    assert note.token == "etag:d41d8cd98f00b204e9800998ecf8427e"


def test_several_records_in_one_message_and_a_delete() -> None:
    n = read_notification({"Records": [s3_record("a/_SUCCESS"), s3_record("b/_SUCCESS", name="ObjectRemoved:Delete"),
                                       s3_record("c/x", name="ObjectRestore:Completed")]})
    assert n is not None
    assert [(o.key, o.action) for o in n.objects] == [("a/_SUCCESS", "created"), ("b/_SUCCESS", "deleted"),
                                                      ("c/x", "other")]


def test_test_event_direct_and_through_sns() -> None:
    for body in (TEST_EVENT, sns_envelope(TEST_EVENT)):
        n = read_notification(body)
        assert n is not None and n.test_event and n.objects == ()


def test_sns_envelope_is_opened_and_raw_delivery_is_the_s3_json() -> None:
    enveloped = read_notification(sns_envelope({"Records": [s3_record()]}))
    raw = read_notification({"Records": [s3_record()]})
    assert enveloped is not None and raw is not None
    assert enveloped.shape == "sns"
    assert enveloped.objects[0].key == raw.objects[0].key
    assert enveloped.objects[0].token == raw.objects[0].token  # the same write, whichever the route


def test_eventbridge_key_is_taken_as_it_is() -> None:
    n = read_notification(eventbridge(key="vip/a+b%20c/_SUCCESS"))
    assert n is not None and n.shape == "eventbridge"
    (note,) = n.objects
    assert note.key == "vip/a+b%20c/_SUCCESS"  # not URL-encoded by EventBridge: no decoding
    assert note.token == "sequencer:00617F08299329D189"
    assert note.action == "created"
    assert read_notification(eventbridge("Object Deleted")).objects[0].action == "deleted"  # type: ignore[union-attr]


@pytest.mark.parametrize("body", [
    {"type": "segment.refreshed", "version": 1},
    {"hello": "world"},
    [1, 2],
    "text",
    {"detail-type": "Object Created", "source": "my.app"},  # not S3's EventBridge source
])
def test_our_events_and_other_bodies_are_not_notifications(body: Any) -> None:
    assert read_notification(body) is None


def _broken(path: list[Any], value: Any) -> dict:
    record = s3_record()
    target: Any = record
    for step in path[:-1]:
        target = target[step]
    if value is None:
        target.pop(path[-1])
    else:
        target[path[-1]] = value
    return {"Records": [record]}


@pytest.mark.parametrize(("body", "field", "words"), [
    (_broken(["s3", "object", "key"], None), "Records[0].s3.object.key", "is required"),
    (_broken(["s3", "object", "key"], ""), "Records[0].s3.object.key", "an empty string"),
    (_broken(["s3", "object", "key"], "%C3%28"), "Records[0].s3.object.key", "not UTF-8"),
    (_broken(["s3", "bucket"], None), "Records[0].s3.bucket", "must be an object"),
    (_broken(["eventTime"], "yesterday"), "Records[0].eventTime", "RFC 3339"),
    (_broken(["eventTime"], "2026-11-28T14:05:00"), "Records[0].eventTime", "no offset"),
    (_broken(["eventSource"], "aws:sqs"), "Records[0].eventSource", "aws:s3"),
    (_broken(["s3", "object", "sequencer"], None) | {}, None, None),  # still has an eTag: valid
    ({"Records": []}, "Records", "non-empty"),
    ({"Records": [s3_record()] * (MAX_RECORDS + 1)}, "Records", "more than"),
    ({"Records": ["x"]}, "Records[0]", "must be an object"),
    (sns_envelope({"Records": [s3_record()]}) | {"Message": "{not json"}, "Message", "is not JSON"),
    (sns_envelope({"hello": 1}), "Message", "no Records"),
])
def test_malformed_notifications_name_the_field(body: dict, field: str | None, words: str | None) -> None:
    if field is None:
        assert read_notification(body) is not None
        return
    with pytest.raises(InvalidEvent) as info:
        read_notification(body)
    assert info.value.reason_class == "schema"
    assert info.value.path == field
    assert field in info.value.reason and words in info.value.reason


def test_a_created_object_without_sequencer_or_etag_is_refused_a_delete_is_not() -> None:
    record = s3_record(sequencer=None)
    del record["s3"]["object"]["eTag"]
    with pytest.raises(InvalidEvent, match="sequencer or an eTag"):
        read_notification({"Records": [record]})
    deleted = copy.deepcopy(record)
    deleted["eventName"] = "ObjectRemoved:Delete"
    assert read_notification({"Records": [deleted]}).objects[0].action == "deleted"  # type: ignore[union-attr]


def test_an_sns_subscription_confirmation_says_what_to_do() -> None:
    body = {"Type": "SubscriptionConfirmation", "MessageId": "m", "Token": "t" * 40,
            "TopicArn": "arn:aws:sns:us-west-2:123456789012:exports", "SubscribeURL": "https://sns.example/confirm"}
    with pytest.raises(InvalidEvent) as info:
        read_notification(body)
    assert info.value.reason_class == "unknown_type" and "confirm the subscription" in info.value.reason
