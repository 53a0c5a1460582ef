"""Amazon SQS: queues with a redrive policy, visibility extension, and plain-boto3 publishing.

Consuming goes through kombu (its prefetch accounting and polling), but every write is a direct boto3
call on kombu's client: kombu would wrap the body in its JSON envelope, which a non-kombu consumer of
the events queue could not read. Settling uses the receipt handle, which is not tied to a connection,
so deliveries survive a reconnect here (unlike AMQP delivery tags).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError
from kombu import Connection, Consumer, Exchange, Queue

from worker.broker.driver import Described, Driver
from worker.broker.topology import EVENTS, MAX_DELAY_SECONDS, REQUESTS, Topology, check_delay

log = logging.getLogger(__name__)

#: SQS allows at most 10 message attributes per message.
MAX_ATTRIBUTES = 10
#: Receipt-handle errors meaning "this delivery is no longer yours": the message will come back.
STALE_HANDLE = {"ReceiptHandleIsInvalid", "InvalidParameterValue", "AWS.SimpleQueueService.MessageNotInflight",
                "MessageNotInflight"}
#: SQS's own attribute for routing, since a queue has no routing key.
EVENT_TYPE_ATTRIBUTE = "event_type"
#: Connect and read timeout of one visibility extension, in seconds (at most a sixth of the visibility
#: timeout). One attempt: the heartbeat retries with its own backoff, logging and counting each failure.
BEAT_CALL_TIMEOUT = 5.0


class VisibilityCallFailed(RuntimeError):
    """A visibility extension that timed out or lost its connection; the heartbeat retries it.

    Why not the botocore error itself: those count as "connection unusable" for the bridge, which would
    reconnect the consumer for a beat that merely timed out on its own short-timeout client.
    """


def to_attributes(headers: dict[str, Any], *, keep: tuple[str, ...] = ()) -> dict[str, dict[str, str]]:
    """Headers as SQS string attributes; ``keep`` ones first, since SQS takes only ten."""
    ordered = [k for k in keep if k in headers] + [k for k in headers if k not in keep]
    out: dict[str, dict[str, str]] = {}
    for name in ordered:
        value = headers[name]
        if value is None or name.lower().startswith(("aws.", "amazon.")):
            continue
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        if not text:  # SQS rejects empty attribute values
            continue
        out[name] = {"DataType": "String", "StringValue": text}
        if len(out) == MAX_ATTRIBUTES:
            break
    return out


def from_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """SQS message attributes as plain header values (strings, or bytes for binary attributes)."""
    return {name: a.get("StringValue", a.get("BinaryValue")) for name, a in (attributes or {}).items()}


class SqsDriver(Driver):
    """SQS operations over one kombu SQS connection (see module docstring)."""

    kind = "sqs"
    survives_reconnect = True

    def __init__(self, connection: Connection, topology: Topology, *, prefetch: int,
                 visibility_timeout: float) -> None:
        super().__init__(connection, topology, prefetch=prefetch, visibility_timeout=visibility_timeout)
        self._channel = connection.channel()
        self._client = self._channel.sqs()
        self._beat_client = _bounded_client(self._client, min(BEAT_CALL_TIMEOUT, max(1.0, visibility_timeout / 6)))
        self._urls: dict[str, str] = {}
        self._consumer: Consumer | None = None

    def _name(self, queue: str) -> str:
        return self._channel.canonical_queue_name(queue)

    def _url(self, queue: str) -> str:
        if queue not in self._urls:
            self._urls[queue] = self._client.get_queue_url(QueueName=self._name(queue))["QueueUrl"]
        return self._urls[queue]

    def _ensure(self, queue: str, attributes: dict[str, str]) -> str:
        """Return the queue's URL, creating it with ``attributes`` if absent.

        An existing queue is left alone: CreateQueue with attributes that differ from the existing ones
        fails, and queues are often owned by infrastructure code whose settings must win.
        """
        name = self._name(queue)
        try:
            url = self._client.get_queue_url(QueueName=name)["QueueUrl"]
        except ClientError as exc:
            if "NonExistentQueue" not in exc.response["Error"]["Code"] and \
                    exc.response["Error"]["Code"] != "QueueDoesNotExist":
                raise
            url = self._client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            log.info("created SQS queue %s", name)
        self._urls[queue] = url
        self._channel._queue_cache[name] = url  # so kombu never creates it on its own terms
        return url

    def declare(self) -> None:
        """DLQ first (the redrive policy needs its ARN), then the requests queue, then the events queue."""
        topo = self.topology
        visibility = {"VisibilityTimeout": str(max(0, int(self.visibility_timeout)))}
        dlq_url = self._ensure(topo.dead_letter_queue, dict(visibility))
        dlq_arn = self._client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(topo.max_receive_count)})
        url = self._ensure(topo.requests_queue, {**visibility, "RedrivePolicy": redrive})
        existing = self._client.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
        if "RedrivePolicy" not in existing.get("Attributes", {}):
            log.warning("SQS queue %s has no redrive policy: poison messages will never reach %s",
                        topo.requests_queue, topo.dead_letter_queue)
        self._ensure(topo.events_exchange, dict(visibility))

    def consume(self, on_message: Callable[[Any], None]) -> None:
        """Consume the requests queue through kombu, which polls it from ``drain_events``."""
        if self._consumer is None:
            queue = Queue(self.topology.requests_queue, exchange=Exchange(""),
                          routing_key=self.topology.requests_queue, no_declare=True)
            self._consumer = Consumer(self._channel, queues=[queue], no_ack=False, on_message=on_message,
                                      auto_declare=False)
            self._consumer.qos(prefetch_count=self.prefetch)
        self._consumer.consume()

    def cancel(self) -> None:
        """Stop polling (SQS has nothing to tell: messages are only taken when we ask)."""
        if self._consumer is not None:
            self._consumer.cancel()

    def poll(self, timeout: float, capacity: int) -> None:
        """Receive at most ``capacity`` messages, counting deliveries held from earlier connections."""
        if self._consumer is not None and capacity > 0:
            qos = self._channel.qos
            qos.prefetch_count = len(qos._delivered) - len(qos._dirty) + capacity
        super().poll(timeout, capacity)

    def describe(self, message: Any) -> Described:
        """The SQS body (encoded as UTF-8), message attributes and ApproximateReceiveCount."""
        sqs_message = message.delivery_info["sqs_message"]
        body = sqs_message["Body"]
        count = int(sqs_message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
        headers = from_attributes(sqs_message.get("MessageAttributes", {}))
        return body.encode("utf-8") if isinstance(body, str) else bytes(body), headers, count, count > 1

    def _release_slot(self, message: Any) -> None:
        """Free the prefetch slot without kombu touching SQS (we already did)."""
        if message.channel is self._channel:
            self._channel.qos.ack(message.delivery_tag)

    def _settle(self, message: Any, call: Callable[..., Any], **kwargs: Any) -> bool:
        info = message.delivery_info
        try:
            call(QueueUrl=info["sqs_queue"], ReceiptHandle=info["sqs_message"]["ReceiptHandle"], **kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in STALE_HANDLE:
                raise
            log.warning("SQS delivery no longer held (%s): it will be redelivered",
                        exc.response["Error"]["Code"])
            self._release_slot(message)
            return False
        return True

    def ack(self, message: Any) -> bool:
        """DeleteMessage by receipt handle."""
        ok = self._settle(message, self._client.delete_message)
        self._release_slot(message)
        return ok

    def requeue(self, message: Any) -> bool:
        """Visibility 0: visible again at once. Counts as a receive toward the redrive policy."""
        ok = self._settle(message, self._client.change_message_visibility, VisibilityTimeout=0)
        self._release_slot(message)
        return ok

    def hold(self, message: Any) -> bool:
        """Extend the visibility timeout from now, so no other consumer gets it while we work.

        One bounded attempt on the heartbeat's own client (short connect and read timeouts): a call that
        hangs gives up in seconds instead of holding the bridge thread for botocore's minutes of retries.
        """
        from botocore.exceptions import BotoCoreError

        try:
            return self._settle(message, self._beat_client.change_message_visibility,
                                VisibilityTimeout=max(0, int(self.visibility_timeout)))
        except BotoCoreError as exc:
            raise VisibilityCallFailed(f"{type(exc).__name__}: {exc}") from exc

    def release_held(self, messages: list[Any]) -> None:
        """Make held messages visible now rather than after their timeout (a faster hand-over)."""
        for message in messages:
            try:
                self._settle(message, self._client.change_message_visibility, VisibilityTimeout=0)
            except Exception as exc:  # the message comes back after its timeout anyway
                log.warning("could not release an SQS message: %s", exc)
        # kombu would otherwise "restore" them on close, re-hiding them for wait_time_seconds.
        self._channel.qos._delivered.clear()

    def publish(self, to: str, body: bytes, *, routing_key: str | None = None,
                headers: dict[str, Any] | None = None, delay_seconds: float = 0) -> None:
        """SendMessage with the body as-is; an event's type also goes in the ``event_type`` attribute.

        ``delay_seconds``: SQS's own ``DelaySeconds``, rounded up to whole seconds and capped at 900 (the
        most SQS allows); a delayed message is counted as "delayed", not as visible or in flight.
        """
        delay = check_delay(delay_seconds)
        queue = {REQUESTS: self.topology.requests_queue, EVENTS: self.topology.events_exchange,
                 "dlq": self.topology.dead_letter_queue}.get(to)
        if queue is None:
            raise ValueError(f"unknown destination {to!r}")
        if delay and to != REQUESTS:
            raise ValueError(f"only requests can be delayed, not {to!r}")
        headers = dict(headers or {})
        keep: tuple[str, ...] = ("x-segment-export-error", "x-segment-export-error-class")
        if to == EVENTS and routing_key:
            headers[EVENT_TYPE_ATTRIBUTE] = routing_key
            keep = (EVENT_TYPE_ATTRIBUTE,)
        kwargs: dict[str, Any] = {"QueueUrl": self._url(queue), "MessageBody": bytes(body).decode("utf-8")}
        attributes = to_attributes(headers, keep=keep)
        if attributes:
            kwargs["MessageAttributes"] = attributes
        if delay:
            kwargs["DelaySeconds"] = min(MAX_DELAY_SECONDS, math.ceil(delay))
        self._client.send_message(**kwargs)

    def abandon(self, message: Any) -> None:
        """Free the prefetch slot and leave the message as it is: it reappears when its visibility lapses.

        Not "visible now": a settle that failed here would likely fail again at once, and the visibility
        timeout is a natural backoff before the next attempt (it still counts toward the redrive policy).
        """
        self._release_slot(message)

    def close(self, *, broken: bool = False) -> None:
        """Forget held messages before closing so kombu's close does not re-hide them."""
        self._channel.qos._delivered.clear()
        super().close(broken=broken)


def _bounded_client(client: Any, timeout: float) -> Any:
    """A copy of kombu's SQS ``client`` (same endpoint, region, credentials) with ``timeout`` and one attempt.

    Falls back to ``client`` itself when it has no credentials to copy (the heartbeat is then bounded by
    the transport's ``client-config`` timeouts, see ``worker.broker.options``).
    """
    import boto3
    from botocore.config import Config

    credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
    if credentials is None:
        return client
    frozen = credentials.get_frozen_credentials()
    config = client.meta.config.merge(Config(connect_timeout=timeout, read_timeout=timeout,
                                             retries={"total_max_attempts": 1}))
    return boto3.session.Session().client(
        "sqs", region_name=client.meta.region_name, endpoint_url=client.meta.endpoint_url, config=config,
        aws_access_key_id=frozen.access_key, aws_secret_access_key=frozen.secret_key,
        aws_session_token=frozen.token)
