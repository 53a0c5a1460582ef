"""``[segments.ID] triggers``: read, checked by the worker's own glob rules, tied to an export's segment."""

from __future__ import annotations

from typing import Any

import pytest

from worker.settings import ConfigError, parse_config

CONNECTIONS = {"c": {"hostname": "a.api-us1.com", "api_key_env": "X", "data_privacy_consent": True}}
EXPORTS = {"vip": {"segment": "vip-customers", "connection": "c", "list_id": 3, "mapping": {"email": "E"}}}


def doc(segments: dict[str, Any]) -> dict[str, Any]:
    return {"connections": CONNECTIONS, "exports": EXPORTS, "segments": segments}


def test_triggers_are_read() -> None:
    triggers = ["s3://cdp-exports/vip/*/_SUCCESS", "az://insights/CustomerInsights_*/vip/model.json",
                "abfss://insights@acct.dfs.core.windows.net/CustomerInsights_*/vip/model.json"]
    config = parse_config(doc({"vip-customers": {"triggers": triggers}}))
    assert config.segments["vip-customers"].triggers == tuple(triggers)
    assert parse_config(doc({})).segments == {}


@pytest.mark.parametrize(("segments", "message"), [
    ({"vip-customers": {"triggers": ["cdp-exports/vip/_SUCCESS"]}},
     "segments.vip-customers.triggers[0]: trigger 'cdp-exports/vip/_SUCCESS' must start with s3://, az:// or abfss://"),
    ({"vip-customers": {"triggers": ["s3://cdp-*/x"]}}, "must name one bucket or container (no wildcard in it)"),
    ({"vip-customers": {"triggers": ["s3://b/[x"]}}, "never closed"),
    ({"vip-customers": {"triggers": ["s3://b/vip/_SUCCESS", "s3://b/vip/[z-a]/_SUCCESS"]}},
     "segments.vip-customers.triggers[1]: trigger 's3://b/vip/[z-a]/_SUCCESS' is not a valid glob (bad character "
     "range z-a)"),
    ({"vip-customers": {"triggers": ["az://NO_/vip/model.json"]}},
     "segments.vip-customers.triggers[0]: trigger 'az://NO_/vip/model.json': the part before the first '/' is not"),
    ({"vip-customers": {"triggers": [""]}}, "segments.vip-customers.triggers"),
    ({"vip-customers": {"trigger": ["s3://b/x"]}}, "unknown key 'trigger'"),
    ({"vip": {"triggers": ["s3://b/x/_SUCCESS"]}},
     "segments.vip.triggers: no export has segment = 'vip', so a trigger would start nothing (segments of the "
     "exports: vip-customers)"),
])
def test_bad_triggers_name_the_key_and_the_fix(segments: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(doc(segments))
    assert message in str(err.value)
