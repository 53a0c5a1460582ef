"""CloudEvents 1.0 (structured JSON and the HTTP binary mode) and Azure Event Grid, read into what we act on.

Why: producers that already speak CloudEvents (Knative, Event Grid, many SaaS webhooks) should not need
to learn our envelope. A CloudEvent whose ``type`` is ours (``segment.refreshed``, ``export.requested``)
carries our event in ``data``; one whose type is Event Grid's ``Microsoft.Storage.BlobCreated`` (or
``BlobDeleted``) announces a blob, read into an ``ObjectNote`` like an S3 notification.

- Our types: ``data`` is our event's JSON object; ``type`` comes from the CloudEvent, ``version``
  defaults to 1, ``occurred_at`` to the CloudEvent's ``time``, and ``id`` to a digest of ``source`` and
  ``id`` (which, by the specification, identify a duplicate): the same CloudEvent sent twice is the same
  event, so an ``export.requested`` sent twice is one run.
- BlobCreated: ``data.url`` names the blob (``https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH``, or
  ``dfs.``), ``data.sequencer`` (else ``data.eTag``) which write it was, the event's time when. On ADLS
  Gen2 a file is finished only at ``FlushWithClose``: ``CreateFile`` announces an empty file, so only the
  APIs that finish a blob count as created.
- Event Grid's own schema (``eventType``, ``eventTime``, a JSON array) is turned into CloudEvents by
  ``from_eventgrid``; its ``SubscriptionValidationEvent`` is the ingress's business, not a queue message.

May import: nothing of ``worker`` outside ``worker.events``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from worker.events.instants import InstantError, parse_instant
from worker.events.notifications import Action, Notification, ObjectNote, kind_of, show_value
from worker.events.schemas import CONSUMED_TYPES, InvalidEvent

SPEC_VERSION: Final = "1.0"
BLOB_CREATED: Final = "Microsoft.Storage.BlobCreated"
BLOB_DELETED: Final = "Microsoft.Storage.BlobDeleted"
VALIDATION: Final = "Microsoft.EventGrid.SubscriptionValidationEvent"
FINISHING_APIS: Final = frozenset({"PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose", "SftpCommit",
                                   "PutBlobFromUrl"})
"""Event Grid ``data.api`` values after which a blob holds its final bytes (``CreateFile`` does not)."""
CONTENT_TYPE: Final = "application/cloudevents+json"
_ATTRIBUTES: Final = ("id", "source", "type")
_AZURE_HOSTS: Final = (".blob.core.windows.net", ".dfs.core.windows.net")


def is_cloudevent(data: Any) -> bool:
    return isinstance(data, dict) and "specversion" in data


def read_cloudevent(ce: Mapping[str, Any]) -> dict[str, Any] | Notification:
    """Our event (to be validated against our schema) or the Notification of a blob; InvalidEvent otherwise."""
    version = ce.get("specversion")
    if version != SPEC_VERSION:
        raise InvalidEvent("unsupported_version", f"CloudEvent specversion {show_value(version)} is not supported; "
                                                  f"send specversion \"{SPEC_VERSION}\"")
    for name in _ATTRIBUTES:
        value = ce.get(name)
        if not isinstance(value, str) or not value:
            raise _invalid(name, f"is required and must be a non-empty string (CloudEvents 1.0), got {kind_of(value)}")
    ctype = ce.get("datacontenttype")
    if ctype is not None and (not isinstance(ctype, str) or not _is_json(ctype)):
        raise _invalid("datacontenttype", f"must be application/json (or absent), got {show_value(ctype)}")
    etype = ce["type"]
    if etype in CONSUMED_TYPES:
        return _ours(ce)
    if etype in (BLOB_CREATED, BLOB_DELETED):
        time = ce.get("time")
        if not isinstance(time, str):
            raise _invalid("time", "is required for a blob event (it is the refresh's occurred_at)")
        return Notification("cloudevent", (_blob(ce.get("data"), etype, time, "cloudevent"),))
    raise InvalidEvent("unknown_type", f"CloudEvent type {show_value(etype)} is not one this worker acts on; expected "
                                       f"one of {', '.join(CONSUMED_TYPES)}, {BLOB_CREATED}")


def to_cloudevent(event: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Our event as a structured CloudEvent: its id, type and time as attributes, the rest as ``data``.

    ``read_cloudevent`` turns it back into an event with the same fields, except ``id``, which becomes
    ``event_id_for(source, id)`` (a CloudEvent is identified by source and id together).
    """
    data = {k: v for k, v in event.items() if k not in ("type", "version", "id", "occurred_at")}
    return {"specversion": SPEC_VERSION, "id": event["id"], "source": source, "type": event["type"],
            "time": event["occurred_at"], "datacontenttype": "application/json", "data": data}


def event_id_for(source: str, ce_id: str) -> str:
    """Our event id for a CloudEvent: ``source`` and ``id`` identify it (a duplicate has both the same)."""
    return "ce-" + hashlib.sha256(f"{source}\0{ce_id}".encode()).hexdigest()[:40]


def _ours(ce: Mapping[str, Any]) -> dict[str, Any]:
    data = ce.get("data")
    if not isinstance(data, dict):
        raise _invalid("data", f"must be a JSON object holding the {ce['type']} event, got {kind_of(data)}")
    if data.get("type", ce["type"]) != ce["type"]:
        raise _invalid("data.type", f"is {show_value(data.get('type'))} but the CloudEvent's type is {ce['type']!r}; "
                                    "leave data.type out or make them equal")
    event: dict[str, Any] = {**data, "type": ce["type"]}
    event.setdefault("version", 1)
    event.setdefault("id", event_id_for(ce["source"], ce["id"]))
    if "occurred_at" not in event and isinstance(ce.get("time"), str):
        event["occurred_at"] = ce["time"]
    return event


def _blob(data: Any, etype: str, time: str, shape: Any) -> ObjectNote:
    if not isinstance(data, dict):
        raise _invalid("data", f"must be an object (Event Grid's blob event data), got {kind_of(data)}")
    url = data.get("url")
    if not isinstance(url, str) or not url:
        raise _invalid("data.url", "is required: the blob's URL, e.g. https://ACCOUNT.blob.core.windows.net/C/PATH")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    container, _, path = parts.path.lstrip("/").partition("/")
    if parts.scheme != "https" or not host.endswith(_AZURE_HOSTS) or not container or not path:
        raise _invalid("data.url", f"{show_value(url)} is not a blob URL (https://ACCOUNT.blob.core.windows.net/"
                                   "CONTAINER/PATH or .dfs.core.windows.net)")
    try:
        parse_instant(time)
    except InstantError as exc:
        raise _invalid("time", str(exc)) from None
    api = data.get("api")
    action: Action = ("deleted" if etype == BLOB_DELETED else "created" if api in FINISHING_APIS else "other")
    token = ""
    for kind, name in (("sequencer", "sequencer"), ("etag", "eTag")):
        value = data.get(name)
        if isinstance(value, str) and value.strip('"'):
            token = f"{kind}:{value.strip(chr(34))}"
            break
    if not token and action == "created":
        raise _invalid("data.sequencer", "a created blob needs data.sequencer or data.eTag (which write it was, so "
                                         "that a duplicate event is not a second refresh)")
    account = host.split(".", 1)[0]
    return ObjectNote(f"{container}@{account}", unquote(path), action, time, token, shape, "az")


def from_eventgrid(item: Mapping[str, Any]) -> dict[str, Any]:
    """One event of Event Grid's own schema as a structured CloudEvent (what the requests queue takes)."""
    for name in ("id", "eventType", "subject", "eventTime"):
        value = item.get(name)
        if not isinstance(value, str) or not value:
            raise _invalid(name, f"is required in an Event Grid event and must be a non-empty string, got "
                                 f"{kind_of(value)}", schema="Event Grid event")
    topic = item.get("topic")
    ce: dict[str, Any] = {"specversion": SPEC_VERSION, "id": item["id"], "type": item["eventType"],
                          "source": topic if isinstance(topic, str) and topic else "eventgrid",
                          "subject": item["subject"], "time": item["eventTime"],
                          "datacontenttype": "application/json", "data": item.get("data")}
    return ce


def from_binary(headers: Mapping[str, str], data: Any) -> dict[str, Any]:
    """A CloudEvent sent in HTTP binary mode (``ce-*`` headers, the data as the body) in structured form."""
    ce: dict[str, Any] = {}
    for name, value in headers.items():
        low = name.lower()
        if low.startswith("ce-") and len(low) > 3:
            ce[low[3:]] = unquote(value)  # the HTTP binding percent-encodes header values
    ctype = headers.get("Content-Type") or headers.get("content-type")
    if ctype:
        ce["datacontenttype"] = ctype
    ce["data"] = data
    return ce


def _is_json(ctype: str) -> bool:
    media = ctype.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json") or media == "text/json"


def _invalid(path: str, text: str, *, schema: str = "CloudEvent") -> InvalidEvent:
    return InvalidEvent("schema", f"{schema}: {path} {text}", path=path)

