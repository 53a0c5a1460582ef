"""Pure functions of the broker layer: URL kinds, transport defaults, names, backoff, SQS attributes."""

from __future__ import annotations

import random

import pytest

from worker.broker import (
    DELAY_BUCKETS,
    MAX_DELAY_SECONDS,
    BrokerBridge,
    Topology,
    broker_kind,
    delay_bucket,
    transport_options_for,
)
from worker.broker.backoff import backoff_delays
from worker.broker.sqs_driver import from_attributes, to_attributes


def test_broker_kind_by_scheme() -> None:
    assert broker_kind("amqp://guest:guest@127.0.0.1:5672//") == "amqp"
    assert broker_kind("amqps://h/") == "amqp"
    assert broker_kind("sqs://") == "sqs"
    assert broker_kind("memory://") == "memory"
    with pytest.raises(ValueError, match="unsupported broker URL scheme"):
        broker_kind("redis://localhost")


def test_sqs_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    options = transport_options_for("sqs://")
    assert options["region"] == "eu-west-1"
    assert options["sqs_base64_encoding"] is False
    assert options["fetch_message_attributes"]["MessageSystemAttributeNames"] == ["ApproximateReceiveCount"]
    assert transport_options_for("sqs://k:s@127.0.0.1:4566")["is_secure"] is False
    assert transport_options_for("sqs://k:s@sqs.eu-west-1.amazonaws.com")["is_secure"] is True
    assert transport_options_for("sqs://", wait_time_seconds=0)["wait_time_seconds"] == 0


def test_amqp_defaults_turn_confirms_on() -> None:
    options = transport_options_for("amqp://guest:guest@127.0.0.1//")
    assert options["confirm_publish"] is True
    assert set(options) <= {"confirm_publish", "client_properties"}  # all go to amqp.Connection


def test_topology_names() -> None:
    topo = Topology()
    assert topo.requests_queue == "segment-export-requests"
    assert topo.dead_letter_queue == "segment-export-requests-dlq"
    assert topo.events_exchange == "segment-export-events"
    assert Topology(requests_queue="r").dead_letter_queue == "r-dlq"
    with pytest.raises(ValueError):
        Topology(max_receive_count=0)


def test_delays_round_up_to_a_bucket_and_are_capped() -> None:
    assert DELAY_BUCKETS == (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900) and MAX_DELAY_SECONDS == 900
    assert [delay_bucket(s) for s in (0, 0.001, 1, 1.5, 30, 30.01, 31, 899, 900, 901, 10**6)] == \
        [0, 1, 1, 2, 30, 60, 60, 900, 900, 900, 900]
    for bad in (-0.5, float("nan"), float("inf"), "30", None, True):
        with pytest.raises(ValueError, match="delay_seconds must be a finite number >= 0"):
            delay_bucket(bad)  # type: ignore[arg-type]


def test_delay_queue_names() -> None:
    topo = Topology(requests_queue="r")
    assert topo.delay_queue(30) == "r-delay-30s"
    assert topo.delay_queue(31) == "r-delay-60s"
    assert topo.delay_queue(7200) == "r-delay-900s"
    assert topo.delay_queues() == tuple(f"r-delay-{b}s" for b in DELAY_BUCKETS)
    with pytest.raises(ValueError, match="needs a delay > 0"):
        topo.delay_queue(0)


def test_backoff_grows_is_capped_and_jittered() -> None:
    gen = backoff_delays(initial=0.2, cap=5.0, rng=random.Random(1))
    delays = [next(gen) for _ in range(20)]
    assert 0.1 <= delays[0] <= 0.2
    assert max(delays) <= 5.0 and delays[-1] >= 2.5
    assert len(set(delays[-5:])) == 5  # jitter: replicas do not retry in lockstep


def test_sqs_attributes_round_trip_and_limit() -> None:
    headers = {"x-segment-export-error": "bad", **{f"h{n}": n for n in range(15)}, "empty": "", "none": None,
               "AWS.reserved": "x", "bin": b"raw"}
    attrs = to_attributes(headers, keep=("x-segment-export-error",))
    assert len(attrs) == 10
    assert attrs["x-segment-export-error"] == {"DataType": "String", "StringValue": "bad"}
    assert "empty" not in attrs and "none" not in attrs and "AWS.reserved" not in attrs
    assert from_attributes(attrs)["h0"] == "0"


def test_bridge_rejects_a_zero_prefetch() -> None:
    with pytest.raises(ValueError):
        BrokerBridge("memory://", Topology(), prefetch=0)


async def test_calls_before_start_fail_cleanly() -> None:
    bridge = BrokerBridge("memory://", Topology(), prefetch=1)
    with pytest.raises(ConnectionError):
        await bridge.publish_request(b"{}")
    with pytest.raises(ValueError, match="delay_seconds must be a finite number >= 0, not -1"):
        await bridge.publish_request(b"{}", delay_seconds=-1)
    await bridge.stop()
    assert not bridge.connected
    assert bridge.unsettled() == [] and not bridge.consuming


def test_visibility_timeout_comes_from_the_argument_then_the_transport_options() -> None:
    url = "sqs://k:s@127.0.0.1:1"
    assert BrokerBridge(url, Topology(), prefetch=1).visibility_timeout == 120
    from_options = BrokerBridge(url, Topology(), prefetch=1, transport_options={"visibility_timeout": 4})
    assert from_options.visibility_timeout == 4 and from_options.transport_options["visibility_timeout"] == 4
    explicit = BrokerBridge(url, Topology(), prefetch=1, transport_options={"visibility_timeout": 4},
                            visibility_timeout=9)
    assert explicit.visibility_timeout == 9 and explicit.transport_options["visibility_timeout"] == 9
