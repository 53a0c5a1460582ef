"""The keys added for the removal guard, re-admission, run retries, retention, leases and Redis.

Names and defaults are the shared contract (notes/contract.md): other modules read exactly these
attributes, so the defaults are pinned here.
"""

from __future__ import annotations

from typing import Any

import pytest

from worker.settings import ConfigError, parse_config

CONNECTIONS = {"c": {"hostname": "a.api-us1.com", "api_key_env": "X", "data_privacy_consent": True}}


def doc(worker: dict[str, Any] | None = None, **export: Any) -> dict[str, Any]:
    raw = {"segment": "s", "connection": "c", "list_id": 3, "mapping": {"email": "E"}, **export}
    return {"worker": worker or {}, "connections": CONNECTIONS, "exports": {"vip": raw}}


def error(d: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config(d)
    return str(err.value)


def test_defaults() -> None:
    config = parse_config(doc())
    w, e = config.worker, config.exports["vip"]
    assert (w.redis_url, w.expected_replicas, w.run_retry_base_seconds, w.max_run_attempts, w.retention_days,
            w.lease_seconds, w.request_timeout_seconds) == (None, 3, 30.0, 5, 30.0, 30.0, 10.0)
    assert (e.max_removal_fraction, e.max_removals, e.readmit) == (0.2, None, True)
    assert isinstance(w.run_retry_base_seconds, float) and isinstance(w.lease_seconds, float)


def test_set_values_are_read_and_numbers_become_floats() -> None:
    config = parse_config(doc({"redis_url": "rediss://redis.internal:6380/2", "expected_replicas": 5,
                               "run_retry_base_seconds": 2, "max_run_attempts": 1, "retention_days": 0.5,
                               "lease_seconds": 12, "request_timeout_seconds": 4},
                              max_removal_fraction=0, max_removals=0, readmit=False))
    w, e = config.worker, config.exports["vip"]
    assert (w.redis_url, w.expected_replicas, w.max_run_attempts) == ("rediss://redis.internal:6380/2", 5, 1)
    assert (w.run_retry_base_seconds, w.retention_days, w.lease_seconds) == (2.0, 0.5, 12.0)
    assert type(w.run_retry_base_seconds) is float and type(w.lease_seconds) is float
    assert (e.max_removal_fraction, e.max_removals, e.readmit) == (0.0, 0, False)


@pytest.mark.parametrize(("worker", "export", "message"), [
    ({"expected_replicas": 0}, {}, "worker.expected_replicas: expected a positive integer, got 0"),
    ({"expected_replicas": 2.0}, {}, "worker.expected_replicas: expected a positive integer, got 2.0"),
    ({"run_retry_base_seconds": 0}, {}, "worker.run_retry_base_seconds: expected a positive number, got 0.0"),
    ({"max_run_attempts": 0}, {}, "worker.max_run_attempts: expected a positive integer, got 0"),
    ({"max_run_attempts": "5"}, {}, "worker.max_run_attempts: must be an integer, not a string: max_run_attempts = 5"),
    ({"retention_days": -1}, {}, "worker.retention_days: expected a positive number, got -1.0"),
    ({"lease_seconds": 0.5}, {}, "worker.lease_seconds: expected a number >= 1, got 0.5"),
    ({"lease_seconds": 20}, {}, "worker.lease_seconds: 20 is too short for request_timeout_seconds = 10: a bulk "
                                "import in flight could outlive the lease"),
    ({"lease_seconds": 30, "request_timeout_seconds": 11}, {}, "worker.lease_seconds: 30 is too short for "
                                                              "request_timeout_seconds = 11"),
    ({"request_timeout_seconds": 0}, {}, "worker.request_timeout_seconds: expected a positive number, got 0.0"),
    ({}, {"max_removal_fraction": 1.5}, "exports.vip.max_removal_fraction: expected a number from 0 to 1, got 1.5"),
    ({}, {"max_removal_fraction": "20%"}, "exports.vip.max_removal_fraction: expected a number from 0 to 1, "
                                          "got \"20%\""),
    ({}, {"max_removals": -1}, "exports.vip.max_removals: expected an integer >= 0, got -1"),
    ({}, {"max_removals": 10.5}, "exports.vip.max_removals: expected an integer >= 0, got 10.5"),
    ({}, {"readmit": "no"}, "exports.vip.readmit: expected true or false, got \"no\""),
    ({}, {"readmitt": True}, "exports.vip: unknown key 'readmitt' (did you mean 'readmit'?)"),
    ({"lease_second": 10}, {}, "worker: unknown key 'lease_second' (did you mean 'lease_seconds'?)"),
])
def test_bad_values_name_the_key_and_what_it_takes(worker: dict[str, Any], export: dict[str, Any],
                                                   message: str) -> None:
    assert error(doc(worker, **export)).startswith(message)


@pytest.mark.parametrize("url", [
    "http://default:hunter2@redis:6379/0",
    "redis//default:hunter2@redis:6379",
    "default:hunter2@redis:6379",
    "hunter2",
    "REDIS+SENTINEL://:hunter2@redis:26379",
    "hunter2://redis",
])
def test_a_bad_redis_url_shows_an_example_and_never_the_password(url: str) -> None:
    message = error(doc({"redis_url": url}))
    assert message.startswith("worker.redis_url: ")
    assert "redis://, rediss:// or unix://" in message
    assert 'e.g. redis_url = "redis://redis:6379/0"' in message
    assert "hunter2" not in message and "default:" not in message


@pytest.mark.parametrize("url", ["redis://:hunter2@redis:6379/0", "rediss://u:hunter2@redis:6380",
                                 "unix:///run/redis.sock?password=hunter2"])
def test_no_url_with_a_password_reaches_the_settings_repr(url: str) -> None:
    """Logging the settings (or a traceback with them in locals) must not log the password."""
    worker = parse_config(doc({"redis_url": url, "broker_url": "amqp://u:hunter2@mq:5672//",
                               "state_url": "s3://bucket/prefix"})).worker
    assert worker.redis_url == url
    assert "hunter2" not in repr(worker) and "hunter2" not in str(worker)
