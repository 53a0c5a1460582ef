"""Upstream notifications: the shapes in which storage announces a written object, read into one form.

Why: most producers of segment data cannot publish our ``segment.refreshed``, but the cloud announces a
finished write for free. S3 sends an event notification to SQS, directly, through SNS (an envelope whose
``Message`` is the S3 JSON as a string, unless the subscription delivers raw) or through EventBridge
(``detail-type: Object Created``). This module turns any of those bodies into ``ObjectNote`` values;
which segment an object refreshes is the service's business (``worker.service.triggers``).

Facts the reading rests on (AWS's documentation):

- S3's ``s3.object.key`` is URL-encoded form style (``+`` for a space, ``%3D`` for ``=``; moto also
  encodes ``/``): decoded here with ``unquote_plus``. EventBridge's ``detail.object.key`` is not encoded.
- Configuring a notification sends ``{"Service": "Amazon S3", "Event": "s3:TestEvent", ...}``, with no
  ``Records``: a test event, acknowledged and ignored.
- Delivery is at least once and unordered; ``sequencer`` orders the events of one key, so the object's
  ``token`` (sequencer, else eTag) together with its location identifies one write: a notification
  delivered twice carries the same token.

A body that has the shape of a notification but lacks what we need (a key, a bucket, a time, a token) is
an ``InvalidEvent`` naming the field, dead-lettered like a malformed event of ours. A body with none of
these shapes is not a notification (``read_notification`` returns None): it is read as our own event.

May import: nothing of ``worker`` outside ``worker.events``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import quote, unquote_plus

import orjson

from worker.events.instants import InstantError, parse_instant
from worker.events.schemas import InvalidEvent

Action = Literal["created", "deleted", "other"]
"""What happened to the object: only ``created`` may start a run; the others are acked and counted."""

Shape = Literal["s3", "sns", "eventbridge", "eventgrid", "cloudevent"]
Store = Literal["s3", "az"]

MAX_RECORDS: Final = 100
"""S3 sends one record per message today; a body with more than this is refused rather than fanned out."""
_ECHO: Final = 60


@dataclass(frozen=True)
class ObjectNote:
    """One object a notification announces: where (bucket and decoded key), what happened, when, which write."""

    bucket: str
    """The bucket; on Azure ``container@account``."""
    key: str
    """The object's key (on Azure the blob's path), decoded: exactly the name it has in the store."""
    action: Action
    occurred_at: str
    """The notification's event time (RFC 3339), the refresh's ``occurred_at`` (stale detection)."""
    token: str
    """Which write of the object: ``sequencer:...`` when S3 gives one, else ``etag:...``."""
    shape: Shape
    store: Store = "s3"

    @property
    def uri(self) -> str:
        """The object's location as ``worker.locations`` reads it (decoded once: a ``%`` in a key is ``%25``)."""
        if self.store == "az":
            container, _, account = self.bucket.partition("@")
            return f"abfss://{container}@{account}.dfs.core.windows.net/" + quote(self.key, safe="/")
        return f"s3://{self.bucket}/" + quote(self.key, safe="/")


@dataclass(frozen=True)
class Notification:
    """What one message body announced: objects, or only that a notification was configured (a test event)."""

    shape: Shape
    objects: tuple[ObjectNote, ...] = ()
    test_event: bool = False


def read_notification(data: Any) -> Notification | None:
    """The notification in a decoded JSON body, None when the body has no notification's shape (our events).

    Raises ``InvalidEvent`` (reason class ``schema``, with the field's path) for a notification that lacks
    what a run needs.
    """
    if not isinstance(data, dict):
        return None
    if data.get("Type") == "Notification" and "Message" in data and "TopicArn" in data:
        return _sns(data)
    if data.get("Type") == "SubscriptionConfirmation" and "TopicArn" in data:
        raise InvalidEvent("unknown_type", f"an SNS SubscriptionConfirmation for topic {show_value(data['TopicArn'])}: "
                                           "confirm the subscription (aws sns confirm-subscription with its Token, "
                                           "or open its SubscribeURL); this message itself starts nothing")
    if "Records" in data and "type" not in data:
        return _records(data, "s3", "")
    if data.get("Event") == "s3:TestEvent" and "type" not in data:
        return Notification("s3", test_event=True)
    if "detail-type" in data and data.get("source") == "aws.s3":
        return _eventbridge(data)
    return None


def _sns(data: Mapping[str, Any]) -> Notification:
    message = data.get("Message")
    if not isinstance(message, str):
        raise _invalid("Message", "must be a string holding the S3 event JSON")
    try:
        inner = orjson.loads(message)
    except orjson.JSONDecodeError:
        raise _invalid("Message", "is not JSON (an S3 event notification was expected; a subscription with "
                                  "raw message delivery sends the S3 JSON itself)") from None
    if isinstance(inner, dict) and inner.get("Event") == "s3:TestEvent":
        return Notification("sns", test_event=True)
    if not isinstance(inner, dict) or "Records" not in inner:
        raise _invalid("Message", "is not an S3 event notification (it has no Records)")
    return _records(inner, "sns", "Message.")


def _records(data: Mapping[str, Any], shape: Shape, at: str) -> Notification:
    records = data.get("Records")
    if not isinstance(records, list) or not records:
        raise _invalid(f"{at}Records", "Records must be a non-empty array of S3 event records")
    if len(records) > MAX_RECORDS:
        raise _invalid(f"{at}Records", f"Records holds {len(records)} records, more than the {MAX_RECORDS} one "
                                       f"message may carry")
    return Notification(shape, tuple(_record(r, shape, f"{at}Records[{i}]") for i, r in enumerate(records)))


def _record(record: Any, shape: Shape, at: str) -> ObjectNote:
    if not isinstance(record, dict):
        raise _invalid(at, "an S3 event record must be an object")
    if record.get("eventSource") != "aws:s3":
        raise _invalid(f"{at}.eventSource", f"must be 'aws:s3', got {show_value(record.get('eventSource'))}")
    name = _text(record, "eventName", at)
    s3 = _object(record, "s3", at)
    bucket = _text(_object(s3, "bucket", f"{at}.s3"), "name", f"{at}.s3.bucket")
    obj = _object(s3, "object", f"{at}.s3")
    try:
        key = unquote_plus(_text(obj, "key", f"{at}.s3.object"), errors="strict")
    except UnicodeDecodeError:
        raise _invalid(f"{at}.s3.object.key", "is not UTF-8 once URL-decoded") from None
    action: Action = ("created" if name.startswith("ObjectCreated:")
                      else "deleted" if name.startswith("ObjectRemoved:") else "other")
    return ObjectNote(bucket, key, action, _time(record, "eventTime", at),
                      _token(obj, f"{at}.s3.object", action, ("sequencer",), ("eTag", "etag")), shape)


def _eventbridge(data: Mapping[str, Any]) -> Notification:
    kind = data.get("detail-type")
    detail = _object(data, "detail", "")
    bucket = _text(_object(detail, "bucket", "detail"), "name", "detail.bucket")
    obj = _object(detail, "object", "detail")
    key = _text(obj, "key", "detail.object")  # EventBridge sends the key as it is, not URL-encoded
    action: Action = "created" if kind == "Object Created" else "deleted" if kind == "Object Deleted" else "other"
    note = ObjectNote(bucket, key, action, _time(data, "time", ""),
                      _token(obj, "detail.object", action, ("sequencer",), ("etag", "eTag")), "eventbridge")
    return Notification("eventbridge", (note,))


# ---------------------------------------------------------------------------------------------- fields

def _object(data: Mapping[str, Any], name: str, at: str) -> Mapping[str, Any]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise _invalid(_path(at, name), f"is required and must be an object, got {kind_of(value)}")
    return value


def _text(data: Mapping[str, Any], name: str, at: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise _invalid(_path(at, name), f"is required and must be a non-empty string, got {kind_of(value)}")
    return value


def _time(data: Mapping[str, Any], name: str, at: str) -> str:
    text = _text(data, name, at)
    try:
        parse_instant(text)
    except InstantError as exc:
        raise _invalid(_path(at, name), str(exc)) from None
    return text


def _token(obj: Mapping[str, Any], at: str, action: Action, *names: tuple[str, ...]) -> str:
    """``sequencer:...``, else ``etag:...``: which write this is. A created object without either is refused
    (a duplicate notification could not be told from a new write); other actions need none."""
    for kind, spellings in zip(("sequencer", "etag"), names, strict=True):
        for spelling in spellings:
            value = obj.get(spelling)
            if isinstance(value, str) and value.strip('"'):
                return f"{kind}:{value.strip(chr(34))}"
    if action != "created":
        return ""
    raise _invalid(_path(at, "sequencer"), "a created object needs a sequencer or an eTag (which write it was, "
                                           "so that a duplicate notification is not a second refresh)")


def _path(at: str, name: str) -> str:
    return f"{at}.{name}" if at and not at.endswith(".") else f"{at}{name}"


def _invalid(path: str, text: str) -> InvalidEvent:
    return InvalidEvent("schema", f"S3 notification: {path} {text}", event_type=None, path=path)


def kind_of(value: Any) -> str:
    """What an upstream field holds, said without quoting it ("nothing", "an empty string", "an object")."""
    if value is None:
        return "nothing"
    if value == "":
        return "an empty string"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def show_value(value: Any) -> str:
    """An upstream field in a message: a string clipped and quoted, anything else by its kind."""
    return repr(value[:_ECHO]) if isinstance(value, str) else kind_of(value)
