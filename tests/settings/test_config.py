"""Config validation: every problem names the key and the fix."""

from __future__ import annotations

import pytest

from worker.settings import ConfigError, load_config, parse_config

BASE = """
[worker]
state_url = "file://./state"

[connections.marketing]
hostname = "myaccount.api-us1.com"
api_key_env = "TEST_AC_KEY"
data_privacy_consent = true
usable_by = ["admin", "contributor"]

[exports.vip]
segment = "vip-customers"
connection = "marketing"
list_id = 3
owner_role = "contributor"
mapping = { email = "EmailAddress", first_name = "FirstName" }
"""


def load(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return load_config(p)


def test_valid_config(tmp_path):
    cfg = load(tmp_path, BASE)
    assert cfg.exports["vip"].list_id == 3
    assert cfg.connections["marketing"].api_url == "https://myaccount.api-us1.com"
    assert cfg.exports_for_segment("vip-customers")[0].name == "vip"


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ('segment = "vip-customers"', 'segment = "vip-customers"\nsegmnt = 1', "unknown key 'segmnt'"),
        ('hostname = "myaccount.api-us1.com"', 'hostname = "https://myaccount.api-us1.com"',
         'without a scheme: hostname = "myaccount.api-us1.com"'),
        ('hostname = "myaccount.api-us1.com"', 'hostname = "myaccount.api-us1.com/api/3"', "without a path"),
        ('connection = "marketing"', 'connection = "sales"', "no connection named 'sales'"),
        ("data_privacy_consent = true", "data_privacy_consent = false", "data_privacy_consent: must be true"),
        ('usable_by = ["admin", "contributor"]', 'usable_by = ["admin"]', "'contributor' may not use connection"),
        ("list_id = 3", 'list_id = "3"', "list_id: must be an integer, not a string: list_id = 3"),
        ("list_id = 3", "list_id = 3.5", "list_id: expected a positive integer, got 3.5"),
        ('mapping = { email = "EmailAddress", first_name = "FirstName" }', 'mapping = { first_name = "F" }',
         "mapping.email: required"),
        ('api_key_env = "TEST_AC_KEY"', 'api_key_env = "TEST_AC_KEY"\nbase_url = "http://10.0.0.5:8088"',
         "only loopback URLs"),
        ('api_key_env = "TEST_AC_KEY"', 'api_key_env = "K"\napi_key_file = "/x"', "exactly one of api_key_env"),
    ],
)
def test_errors_name_key_and_fix(tmp_path, old, new, needle):
    text = BASE.replace(old, new)
    assert text != BASE
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    assert needle in str(err.value)


def test_on_leave_values(tmp_path):
    with pytest.raises(ConfigError, match="on_leave"):
        load(tmp_path, BASE.replace('list_id = 3', 'list_id = 3\non_leave = "delete"'))
    cfg = load(tmp_path, BASE.replace('list_id = 3', 'list_id = 3\non_leave = "keep"'))
    assert cfg.exports["vip"].on_leave == "keep"


def test_loopback_base_url_allowed(tmp_path):
    cfg = load(tmp_path, BASE.replace('api_key_env = "TEST_AC_KEY"',
                                      'api_key_env = "TEST_AC_KEY"\nbase_url = "http://127.0.0.1:8088"'))
    assert cfg.connections["marketing"].api_url == "http://127.0.0.1:8088"


def test_missing_key_env_is_config_error_without_leaking(tmp_path, monkeypatch):
    cfg = load(tmp_path, BASE)
    monkeypatch.delenv("TEST_AC_KEY", raising=False)
    with pytest.raises(ConfigError, match="TEST_AC_KEY is not set"):
        cfg.connections["marketing"].api_key()
    monkeypatch.setenv("TEST_AC_KEY", "s3cr3t-value")
    key = cfg.connections["marketing"].api_key()
    assert key.reveal() == "s3cr3t-value"
    assert "s3cr3t" not in repr(key) and "s3cr3t" not in f"{key}" and "s3cr3t" not in str(key)


def test_key_file(tmp_path):
    keyfile = tmp_path / "key"
    keyfile.write_text("abc123\n")
    cfg = load(tmp_path, BASE.replace('api_key_env = "TEST_AC_KEY"', f'api_key_file = "{keyfile}"'))
    assert cfg.connections["marketing"].api_key().reveal() == "abc123"
    keyfile.unlink()
    with pytest.raises(ConfigError, match="cannot read"):
        cfg.connections["marketing"].api_key()


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(tmp_path, "[worker\n")


def test_unknown_export_lists_known(tmp_path):
    cfg = parse_config({"connections": {}, "exports": {}})
    with pytest.raises(ConfigError, match="known: none"):
        cfg.export("x")
