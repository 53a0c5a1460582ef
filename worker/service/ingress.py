"""``segment-export ingress``: an HTTP door to the requests queue for producers that can only call a webhook.

``POST /events`` takes our JSON events, CloudEvents 1.0 (structured ``application/cloudevents+json``, a
batch ``application/cloudevents-batch+json``, or binary mode with ``ce-*`` headers) and Event Grid
batches (a JSON array in Event Grid's schema). Every event is read by the worker's own reader
(``worker.events.incoming``), so a body the worker would dead-letter is answered ``400`` here with the
same reason, naming the field; nothing of a request is published unless all its events are valid.

Then each event is published to the requests queue with publisher confirms, and the answer is ``202``
only once the broker confirmed every one of them. A broker that cannot be reached within
``publish_timeout_seconds`` (unreachable, or hung: the wait is bounded here, around the publish) is
answered ``503`` (with ``Retry-After``) and its publishes are dropped, never sent later; the caller retries, and a retry
is harmless because a run's id follows from its refresh (a duplicate message is a duplicate run, never a
second sync). What is published is what the worker reads: our events as validated (a CloudEvent of our
type already turned into our event, its id derived from ``source`` and ``id``), and blob events as a
structured CloudEvent.

Authentication: ``Authorization: Bearer <token>``, one of the tokens of ``worker.service.tokens``
(``401`` otherwise). The two webhook handshakes are answered without a token, because they grant
nothing (a delivery still needs one) and Event Grid does not promise to send custom headers with them:
Event Grid's ``SubscriptionValidationEvent`` gets its ``validationCode`` back, and the CloudEvents
``OPTIONS`` abuse-protection request gets ``WebHook-Allowed-Origin`` for an origin in
``[ingress] webhook_origins``. TLS is the cluster's ingress controller's job: this serves plain HTTP.

``/metrics`` (Prometheus) and ``/healthz`` (the process answers) share the port; ``/readyz`` fails while
the broker is not connected, so a Service stops sending requests to a replica that could only answer 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

import orjson
from aiohttp import web

from worker.broker import BrokerBridge, Topology, transport_options_for
from worker.events.cloudevents import (
    BLOB_CREATED,
    BLOB_DELETED,
    VALIDATION,
    from_binary,
    from_eventgrid,
    is_cloudevent,
)
from worker.events.incoming import read_data
from worker.events.notifications import Notification
from worker.events.schemas import MAX_EVENT_BYTES, InvalidEvent, load_validators
from worker.service.metrics import INGRESS_EVENTS as EVENTS
from worker.service.metrics import INGRESS_REQUESTS as REQUESTS
from worker.service.metrics import exposition
from worker.service.tokens import Tokens
from worker.settings import Config

log = logging.getLogger("segment_export.ingress")

MAX_BATCH = 1000
"""Events in one request at most; Event Grid sends at most 5,000 a batch but 1 MiB limits it anyway."""


class Ingress:
    """The aiohttp application and the broker bridge it publishes through (never consuming)."""

    def __init__(self, config: Config, *, broker_url: str | None = None, tokens: Tokens | None = None) -> None:
        w, self.settings = config.worker, config.ingress
        self.tokens = tokens or Tokens(self.settings.tokens_env, self.settings.tokens_file)
        url = broker_url or w.broker_url
        self.bridge = BrokerBridge(url, Topology(requests_queue=w.requests_queue, events_exchange=w.events_exchange,
                                                 max_receive_count=w.max_receive_count),
                                   prefetch=1, transport_options=transport_options_for(url, **w.broker_options),
                                   reconnect_wait=self.settings.publish_timeout_seconds,
                                   confirm_timeout=self.settings.publish_timeout_seconds)
        self.bridge.pause()  # it publishes only: no consumer on the requests queue
        self.origins = {o.lower() for o in self.settings.webhook_origins}
        self.stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        #: The port HTTP is served on, once started (the OS's choice for port 0).
        self.port: int | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.settings.max_body_bytes)
        app.router.add_post("/events", self._post)
        app.router.add_route("OPTIONS", "/events", self._options)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def run(self, host: str = "0.0.0.0", port: int | None = None) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stopping.set)
        await self.start(host, port)
        try:
            await self.stopping.wait()
        finally:
            await self.stop()
        return 0

    async def start(self, host: str = "0.0.0.0", port: int | None = None) -> None:
        """Connect to the broker, then serve HTTP on ``port`` ([ingress] port when None; 0: one the OS picks,
        then in :attr:`port` and the log line).

        ConnectionError when the broker cannot be reached within ``publish_timeout_seconds``: a replica
        that could only answer 503 should fail and be restarted, not wait.
        """
        load_validators()
        await self.bridge.start(lambda _: None, start_timeout=self.settings.publish_timeout_seconds)
        self._runner = web.AppRunner(self.app(), access_log=None)  # no access log: URLs and addresses stay out
        await self._runner.setup()
        await web.TCPSite(self._runner, host, self.settings.port if port is None else port).start()
        self.port = int(self._runner.addresses[0][1])
        log.info("ingress serving on port %d", self.port, extra={"port": self.port, "broker": self.bridge.kind})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        await self.bridge.stop()

    # ------------------------------------------------------------------------------------ handlers
    async def _options(self, request: web.Request) -> web.Response:
        """CloudEvents webhook abuse protection: allow the origins we know, refuse the others."""
        origin = request.headers.get("WebHook-Request-Origin", "").strip()
        if not origin:
            return web.Response(status=200, headers={"Allow": "POST, OPTIONS"})
        if origin.lower() not in self.origins:
            log.warning("webhook handshake refused: origin not in [ingress] webhook_origins",
                        extra={"origin": origin[:100]})
            return web.Response(status=403, text="origin not allowed; add it to [ingress] webhook_origins\n")
        REQUESTS.labels("validation").inc()
        headers = {"WebHook-Allowed-Origin": origin, "Allow": "POST, OPTIONS"}
        if "WebHook-Request-Rate" in request.headers:
            headers["WebHook-Allowed-Rate"] = "*"
        return web.Response(status=200, headers=headers)

    async def _post(self, request: web.Request) -> web.Response:
        # Refused before a byte is read: the body is read before the token is checked (Event Grid's
        # handshake is in the body), and a compressed body is inflated whole while it is read, so a small
        # gzip bomb would cost hundreds of MiB before the size limit or the token could refuse it. No
        # producer needs it: Event Grid, curl and `publish` send plain JSON.
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            REQUESTS.labels("invalid").inc()
            return _error(415, "send the body uncompressed (no Content-Encoding); the ingress does not inflate "
                               "request bodies", reason_class="content_encoding")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            REQUESTS.labels("too_large").inc()
            return _error(413, f"the body is larger than [ingress] max_body_bytes = {self.settings.max_body_bytes}")
        try:
            data: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError as exc:
            data, bad_json = None, str(exc)[:120]
        else:
            bad_json = ""
        validation = _validation_code(request, data)
        if validation is not None:  # Event Grid's handshake: echo the code (see the module docstring)
            REQUESTS.labels("validation").inc()
            log.info("Event Grid subscription validated")
            return web.json_response({"validationResponse": validation})
        if not self.tokens.accepts(request.headers.get("Authorization")):
            REQUESTS.labels("unauthorized").inc()
            return _error(401, "send Authorization: Bearer <token> with a token the ingress accepts",
                          headers={"WWW-Authenticate": 'Bearer realm="segment-export"'})
        if bad_json:
            REQUESTS.labels("invalid").inc()
            return _error(400, f"body is not valid JSON: {bad_json}", reason_class="not_json")
        try:
            messages = _messages(request, data)
        except InvalidEvent as exc:
            REQUESTS.labels("invalid").inc()
            return _error(400, exc.reason, reason_class=exc.reason_class, field=exc.path)
        try:
            # Bounded here, not only in the bridge: a broker that stopped answering (TCP open, no frames)
            # must cost the caller publish_timeout_seconds and a 503. Cancelling drops the publishes the
            # bridge had not done yet, so nothing is sent later behind the caller's back.
            await asyncio.wait_for(asyncio.gather(*(self.bridge.publish_request(body) for _, body in messages)),
                                   self.settings.publish_timeout_seconds)
        except (ConnectionError, TimeoutError) as exc:
            REQUESTS.labels("unavailable").inc()
            log.warning("broker unreachable: answered 503 (%s)", type(exc).__name__)
            return _error(503, "the broker did not confirm in time; retry later (a retried event is harmless)",
                          headers={"Retry-After": "5"})
        for kind, _ in messages:
            EVENTS.labels(kind).inc()
        REQUESTS.labels("accepted").inc()
        return web.json_response({"accepted": len(messages)}, status=202)

    async def _metrics(self, _: web.Request) -> web.Response:
        body, content_type = exposition()
        return web.Response(body=body, content_type=content_type)

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _readyz(self, _: web.Request) -> web.Response:
        ready = self.bridge.connected and not self.stopping.is_set()
        return web.json_response({"ready": ready}, status=200 if ready else 503)


# ---------------------------------------------------------------------------------------- reading

def _validation_code(request: web.Request, data: Any) -> str | None:
    """The validationCode of Event Grid's SubscriptionValidationEvent, if that is what this is."""
    if not (isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict)):
        return None
    item = data[0]
    if item.get("eventType") != VALIDATION and request.headers.get("aeg-event-type") != "SubscriptionValidation":
        return None
    code = (item.get("data") or {}).get("validationCode") if isinstance(item.get("data"), dict) else None
    return code if isinstance(code, str) and 0 < len(code) <= 200 else None


def _messages(request: web.Request, data: Any) -> list[tuple[str, bytes]]:
    """Every event of the request as (kind, the message body to publish); InvalidEvent for the first bad one."""
    ctype = request.content_type.lower()
    if "ce-specversion" in request.headers:  # binary mode: attributes in headers, the data is the body
        items = [from_binary(request.headers, data)]
    elif isinstance(data, list) or ctype == "application/cloudevents-batch+json":
        items = _batch(data, "a batch")  # CloudEvents, Event Grid events or our events, each read as itself
    else:
        items = [data]
    out = []
    for i, item in enumerate(items):
        try:
            if isinstance(item, dict) and "eventType" in item and not is_cloudevent(item):
                item = from_eventgrid(item)  # Event Grid's own schema
            read = read_data(item)
        except InvalidEvent as exc:
            if len(items) > 1:
                raise InvalidEvent(exc.reason_class, f"event {i}: {exc.reason}", event_type=exc.event_type,
                                   path=f"[{i}].{exc.path}" if exc.path else f"[{i}]") from None
            raise
        body = orjson.dumps(item if isinstance(read, Notification) else read)
        if len(body) > MAX_EVENT_BYTES:
            raise InvalidEvent("too_large", f"event {i} is {len(body)} bytes once published, more than the "
                                            f"{MAX_EVENT_BYTES} one message may have")
        out.append((_kind(item, read), body))
    return out


def _batch(data: Any, what: str) -> list[Any]:
    if not isinstance(data, list) or not data:
        raise InvalidEvent("not_an_object", f"{what} must be a non-empty JSON array of events")
    if len(data) > MAX_BATCH:
        raise InvalidEvent("too_large", f"{what} holds {len(data)} events, more than {MAX_BATCH}")
    return data


def _kind(item: Any, read: dict[str, Any] | Notification) -> str:
    """A bounded label: our event type, blob (Event Grid), or notification (S3 shapes)."""
    if isinstance(read, Notification):
        return "blob" if is_cloudevent(item) and item.get("type") in (BLOB_CREATED, BLOB_DELETED) else "notification"
    return str(read["type"])


def _error(status: int, message: str, *, reason_class: str | None = None, field: str | None = None,
           headers: dict[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if reason_class:
        body["reason"] = reason_class
    if field:
        body["field"] = field
    return web.json_response(body, status=status, headers=headers)
