"""schemas/config.json agrees with worker/settings.py, the authoritative check.

Why: editors flag what the schema rejects; a schema that rejects a config the worker accepts (or misses a
key the worker has) would teach people to ignore the editor. The schema is generated from the models
(tests/settings/test_config_schema_generated.py keeps the committed file in step); here the two are shown to
judge the same documents alike, with two independent validators (fastjsonschema, jsonschema 2020-12).
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from collections.abc import Callable
from typing import Any

import fastjsonschema
import jsonschema  # a test dependency (through moto): the second, independent 2020-12 validator
import pytest

from worker.events.schemas import load_schema
from worker.settings import ConfigError, Connection, Export, IngressSettings, Segment, WorkerSettings, parse_config

SCHEMA = load_schema("config")
VALIDATE: Callable[[Any], Any] = fastjsonschema.compile(SCHEMA)

EXAMPLE = """
[worker]
broker_url = "amqp://guest:guest@127.0.0.1:5672//"
requests_queue = "segment-export-requests"
events_exchange = "segment-export-events"
state_url = "file://./state"
metrics_port = 9108
snapshot_prefixes = ["s3://cdp-exports/", "file:///data/segments/"]
concurrency = 4
max_unacked_seconds = 600
shutdown_grace_seconds = 30.5
max_receive_count = 5
redis_url = "redis://127.0.0.1:6379/0"
broker_options = { region = "eu-west-1" }
expected_replicas = 2
run_retry_base_seconds = 12.5
max_run_attempts = 3
retention_days = 7
lease_seconds = 45
request_timeout_seconds = 15

[connections.marketing]
display_name = "Marketing ActiveCampaign"
hostname = "myaccount.api-us1.com"
api_key_env = "AC_API_KEY"
data_privacy_consent = true
usable_by = ["admin", "contributor"]
export_user = "ops@example.com"
requests_per_second = 5
bulk_requests_per_minute = 100

[connections.sim]
hostname = "sim.api-us1.com"
api_key_file = "/run/secrets/ac"
data_privacy_consent = true
base_url = "http://127.0.0.1:8088"
requests_per_second = 2.5

[exports.vip-newsletter]
segment = "vip-customers"
connection = "marketing"
list_id = 3
owner_role = "contributor"
on_leave = "unsubscribe"
mapping = { email = "EmailAddress", first_name = "FirstName", last_name = "LastName", phone = "Phone" }
fields = { LOYALTY_TIER = "LoyaltyTier" }
tags = ["segment:vip"]
tag_field = "Tags"
exclude_automations = true
max_profiles = 1000000
max_removal_fraction = 0.5
max_removals = 50000
readmit = false

[exports.minimal]
segment = "all"
connection = "sim"
list_id = 1
mapping = { email = "email" }
"""


def _doc() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE)


def _schema_accepts(doc: dict[str, Any]) -> bool:
    """Both validators' verdict, which must agree (each gets its own copy: fastjsonschema fills defaults in)."""
    fast = True
    try:
        VALIDATE(copy.deepcopy(doc))
    except fastjsonschema.JsonSchemaValueException:
        fast = False
    assert jsonschema.Draft202012Validator(SCHEMA).is_valid(copy.deepcopy(doc)) == fast
    return fast


def _attributes(model: type) -> set[str]:
    return {f.name for f in dataclasses.fields(model)}


def test_every_config_key_is_in_the_schema_and_no_other() -> None:
    """Every attribute of the models is a key a file can set (only the table's own name is not)."""
    defs = SCHEMA["$defs"]
    assert set(defs["worker"]["properties"]) == _attributes(WorkerSettings), \
        "schemas/config.json $defs/worker differs from WorkerSettings: regenerate it"
    assert set(defs["connection"]["properties"]) == _attributes(Connection) - {"name"}
    assert set(defs["export"]["properties"]) == _attributes(Export) - {"name"}
    assert set(defs["segment"]["properties"]) == _attributes(Segment) - {"name"}
    assert set(defs["ingress"]["properties"]) == _attributes(IngressSettings)
    assert set(SCHEMA["properties"]) == {"worker", "connections", "exports", "segments", "ingress"}


def test_the_full_example_is_read_into_the_models() -> None:
    config = parse_config(_doc())
    w = config.worker
    assert (w.expected_replicas, w.run_retry_base_seconds, w.max_run_attempts, w.retention_days,
            w.lease_seconds, w.redis_url) == (2, 12.5, 3, 7.0, 45.0, "redis://127.0.0.1:6379/0")
    e = config.exports["vip-newsletter"]
    assert (e.max_removal_fraction, e.max_removals, e.readmit) == (0.5, 50000, False)
    assert config.connections["sim"].requests_per_second == 2.5


def test_a_full_config_is_valid_for_both() -> None:
    parse_config(_doc())
    assert _schema_accepts(_doc())


def test_an_empty_config_is_valid_for_both() -> None:
    parse_config({})
    assert _schema_accepts({})


def _with(path: str, value: Any) -> dict[str, Any]:
    doc = _doc()
    *parents, last = path.split(".")
    target = doc
    for key in parents:
        target = target[key]
    if value is None:
        del target[last]
    else:
        target[last] = value
    return doc


@pytest.mark.parametrize(("path", "value"), [
    ("extra", {}),                                                  # unknown top-level table
    ("worker.broker", "amqp://"),                                   # unknown key (typo)
    ("worker.metrics_port", -1),
    ("worker.concurrency", 0),
    ("worker.max_unacked_seconds", 0),
    ("worker.snapshot_prefixes", [""]),
    ("worker.requests_queue", 5),
    ("connections.marketing.hostname", "https://myaccount.api-us1.com"),
    ("connections.marketing.hostname", "myaccount.api-us1.com/api/3"),
    ("connections.marketing.hostname", None),
    ("connections.marketing.data_privacy_consent", False),
    ("connections.marketing.data_privacy_consent", None),
    ("connections.marketing.api_key_env", None),                    # neither key source
    ("connections.marketing.api_key_file", "/run/secrets/ac"),      # both key sources
    ("connections.marketing.usable_by", []),
    ("connections.marketing.usable_by", ["owner"]),
    ("connections.marketing.requests_per_second", 0),
    ("connections.marketing.on_leave", "keep"),                     # an export key in a connection
    ("connections.sim.base_url", "http://example.com:8088"),
    ("exports.vip-newsletter.list_id", "3"),
    ("exports.vip-newsletter.list_id", 0),
    ("exports.vip-newsletter.segment", None),
    ("exports.vip-newsletter.mapping", {"first_name": "FirstName"}),
    ("exports.vip-newsletter.mapping", {"email": "EmailAddress", "mail": "x"}),
    ("exports.vip-newsletter.mapping", {"email": ""}),
    ("exports.vip-newsletter.on_leave", "delete"),
    ("exports.vip-newsletter.on_leav", "keep"),
    ("exports.vip-newsletter.owner_role", "owner"),
    ("exports.vip-newsletter.tags", ["  "]),
    ("exports.vip-newsletter.fields", {"TIER": ""}),
    ("exports.vip-newsletter.exclude_automations", "yes"),
    ("exports.vip-newsletter.max_profiles", 0),
    ("worker.metrics_port", 65536),
    ("worker.redis_url", "http://127.0.0.1:6379"),
    ("worker.redis_url", "127.0.0.1:6379"),
    ("worker.expected_replicas", 0),
    ("worker.expected_replicas", 1.5),
    ("worker.run_retry_base_seconds", 0),
    ("worker.max_run_attempts", 0),
    ("worker.retention_days", 0),
    ("worker.lease_seconds", 0.5),
    ("exports.vip-newsletter.max_removal_fraction", 1.01),
    ("exports.vip-newsletter.max_removal_fraction", -0.1),
    ("exports.vip-newsletter.max_removal_fraction", "20%"),
    ("exports.vip-newsletter.max_removals", -1),
    ("exports.vip-newsletter.max_removals", 2.5),
    ("exports.vip-newsletter.readmit", "yes"),
])
def test_a_bad_config_is_rejected_by_both(path: str, value: Any) -> None:
    doc = _with(path, value)
    with pytest.raises(ConfigError):
        parse_config(doc)
    assert not _schema_accepts(doc)


@pytest.mark.parametrize(("path", "value"), [
    ("worker.redis_url", "rediss://:pw@redis.internal:6380/1"),
    ("worker.redis_url", "unix:///run/redis/redis.sock"),
    ("worker.request_timeout_seconds", 15),
    ("worker.expected_replicas", 1),
    ("exports.vip-newsletter.max_removal_fraction", 0),
    ("exports.vip-newsletter.max_removal_fraction", 1),
    ("exports.vip-newsletter.max_removals", 0),
    ("exports.vip-newsletter.readmit", None),
    ("worker.metrics_port", 0),
])
def test_the_bounds_themselves_are_accepted_by_both(path: str, value: Any) -> None:
    doc = _with(path, value)
    parse_config(doc)
    assert _schema_accepts(doc)


def test_the_shortest_lease_is_accepted_with_a_short_enough_request_timeout() -> None:
    """``lease_seconds`` >= 3 request timeouts is a rule between two keys: the worker's check, not the schema's."""
    doc = _with("worker.lease_seconds", 1)
    doc["worker"]["request_timeout_seconds"] = 1 / 3
    parse_config(doc)
    assert _schema_accepts(doc)
    doc["worker"]["request_timeout_seconds"] = 0.5
    with pytest.raises(ConfigError, match="lease_seconds: 1 is too short"):
        parse_config(doc)
