"""schemas/config.json agrees with worker/config.py, the authoritative check.

Why: editors flag what the schema rejects; a schema that rejects a config the worker accepts (or misses a
key the worker has) would teach people to ignore the editor. The key sets are compared with the
dataclasses, so a new config key fails here until config.json knows it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from typing import Any

import fastjsonschema
import pytest

from worker.config import ConfigError, Connection, Export, WorkerSettings, parse_config
from worker.event_schemas import load_schema

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

[exports.minimal]
segment = "all"
connection = "sim"
list_id = 1
mapping = { email = "email" }
"""


def _doc() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE)


def _schema_accepts(doc: dict[str, Any]) -> bool:
    try:
        VALIDATE(doc)
    except fastjsonschema.JsonSchemaValueException:
        return False
    jsonschema = pytest.importorskip("jsonschema")
    assert jsonschema.Draft202012Validator(SCHEMA).is_valid(doc)
    return True


def test_every_config_key_is_in_the_schema_and_no_other() -> None:
    defs = SCHEMA["$defs"]
    assert set(defs["worker"]["properties"]) == set(WorkerSettings.__dataclass_fields__), \
        "schemas/config.json $defs/worker differs from WorkerSettings: add or remove the key there"
    assert set(defs["connection"]["properties"]) == set(Connection.__dataclass_fields__) - {"name"}
    assert set(defs["export"]["properties"]) == set(Export.__dataclass_fields__) - {"name"}
    assert set(SCHEMA["properties"]) == {"worker", "connections", "exports"}


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
])
def test_a_bad_config_is_rejected_by_both(path: str, value: Any) -> None:
    doc = _with(path, value)
    with pytest.raises(ConfigError):
        parse_config(doc)
    assert not _schema_accepts(doc)
