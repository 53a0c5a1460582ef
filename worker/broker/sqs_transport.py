"""kombu's SQS transport, made to hand over message bodies untouched.

Upstream publishers use plain boto3, so a message body is the event JSON itself. Stock kombu guesses:
it base64-decodes anything that looks like base64 and treats any JSON object with a ``properties`` key
as its own envelope. Both guesses can corrupt a legitimate event, so this channel never guesses: every
SQS message becomes a payload whose body is exactly the SQS body, with the SQS message kept in
``delivery_info`` (``sqs_message``, ``sqs_queue``) for receipt handles and attributes.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import SQS


class RawBodyChannel(SQS.Channel):
    """An SQS channel whose received payload body is always the raw SQS body."""

    def _message_to_python(self, message: dict[str, Any], queue_name: str, q_url: str) -> dict[str, Any]:
        return {
            "body": message["Body"],
            "content-type": None,
            "content-encoding": None,
            "headers": {},
            "properties": {
                "delivery_info": {"sqs_message": message, "sqs_queue": q_url},
                "delivery_tag": message["ReceiptHandle"],
            },
        }


class RawBodyTransport(SQS.Transport):
    """SQS transport using :class:`RawBodyChannel`."""

    Channel = RawBodyChannel
