"""The TOML configuration: one validated, immutable settings object for the whole process.

Why strict: a typo in a config key is the most common way an export silently does the wrong thing
(e.g. ``on_leav = "keep"`` unsubscribing a whole list). Every problem raises ``ConfigError`` naming the
key and the fix; the CLI turns it into exit code 2. Keys themselves are read at run time, held in a
``Secret`` and never printed.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from worker.fields import MAX_TAG, DateFormatError, date_format_regex
from worker.secret import Secret

ROLES = ("admin", "contributor")
MAPPING_KEYS = ("email", "first_name", "last_name", "phone")
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")


class ConfigError(ValueError):
    """A problem in the configuration; the message names the key and the fix."""


@dataclass(frozen=True)
class WorkerSettings:
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672//"
    requests_queue: str = "segment-export-requests"
    events_exchange: str = "segment-export-events"
    state_url: str = "file://./state"
    metrics_port: int = 9108
    snapshot_prefixes: tuple[str, ...] | None = None
    concurrency: int = 4
    max_unacked_seconds: float = 600.0
    shutdown_grace_seconds: float = 30.0
    max_receive_count: int = 5
    redis_url: str | None = None
    broker_options: dict[str, Any] = field(default_factory=dict)  # kombu transport options (e.g. SQS region)

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.requests_queue}-dlq"


@dataclass(frozen=True)
class Connection:
    name: str
    hostname: str
    display_name: str = ""
    api_key_env: str | None = None
    api_key_file: str | None = None
    data_privacy_consent: bool = False
    usable_by: tuple[str, ...] = ("admin",)
    export_user: str | None = None
    base_url: str | None = None
    requests_per_second: float = 5.0
    bulk_requests_per_minute: float = 100.0

    @property
    def api_url(self) -> str:
        """Where requests go: the account's HTTPS API host, or a loopback simulator in tests."""
        return self.base_url or f"https://{self.hostname}"

    def api_key(self) -> Secret:
        """Read the key now (env or file), so a rotated secret is picked up by the next run."""
        if self.api_key_env:
            value = os.environ.get(self.api_key_env, "").strip()
            if not value:
                raise ConfigError(
                    f"connections.{self.name}.api_key_env: environment variable {self.api_key_env} is not set "
                    f"or empty; export it with the ActiveCampaign API key (Settings > Developer)"
                )
            return Secret(value)
        assert self.api_key_file is not None
        try:
            value = Path(self.api_key_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"connections.{self.name}.api_key_file: cannot read {self.api_key_file} ({exc.strerror}); "
                f"point it at a readable file holding the API key"
            ) from None
        if not value:
            raise ConfigError(f"connections.{self.name}.api_key_file: {self.api_key_file} is empty")
        return Secret(value)


@dataclass(frozen=True)
class FieldMapping:
    """Where one custom field's value comes from, and how to read it.

    ``source`` is the profile field. ``date_format`` (e.g. ``"DD/MM/YYYY"``) is only for date and
    datetime fields: day-first and month-first dates look alike, so they are never guessed, only read
    when the mapping says which it is. ``separator`` splits a text value for a multi-value field
    (listbox, checkbox); lists need no separator.
    """

    source: str
    date_format: str | None = None
    separator: str = ","


@dataclass(frozen=True)
class Export:
    name: str
    segment: str
    connection: str
    list_id: int
    mapping: dict[str, str]
    owner_role: str = "admin"
    on_leave: str = "unsubscribe"
    #: custom field (personalization tag or title) -> where its value comes from
    fields: dict[str, FieldMapping] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    tag_field: str | None = None
    tag_separator: str = ","
    exclude_automations: bool = False
    max_profiles: int | None = None


@dataclass(frozen=True)
class Config:
    worker: WorkerSettings
    connections: dict[str, Connection]
    exports: dict[str, Export]
    path: str = ""

    def exports_for_segment(self, segment: str) -> list[Export]:
        return [e for e in self.exports.values() if e.segment == segment]

    def export(self, name: str) -> Export:
        try:
            return self.exports[name]
        except KeyError:
            known = ", ".join(sorted(self.exports)) or "none"
            raise ConfigError(f"no export named {name!r} in {self.path or 'the config'} (known: {known})") from None


# ---------------------------------------------------------------------------------------------- parsing

_WORKER_KEYS = {f for f in WorkerSettings.__dataclass_fields__}
_CONNECTION_KEYS = {f for f in Connection.__dataclass_fields__} - {"name"}
_EXPORT_KEYS = {f for f in Export.__dataclass_fields__} - {"name"}


def _unknown(table: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise ConfigError(
            f"{where}: unknown key {extra[0]!r}; allowed keys are: {', '.join(sorted(allowed))} "
            f"(check the spelling)"
        )


def _typed(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{where}.{key}: expected {_kind_name(kind)}, got a boolean")
    if not isinstance(value, kind):
        raise ConfigError(f"{where}.{key}: expected {_kind_name(kind)}, got {type(value).__name__} {value!r}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
             dict: "a table"}
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)


def _is_loopback_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def _parse_worker(raw: dict[str, Any]) -> WorkerSettings:
    where = "worker"
    _unknown(raw, _WORKER_KEYS, where)
    kw: dict[str, Any] = {}
    for key in ("broker_url", "requests_queue", "events_exchange", "state_url", "redis_url"):
        if key in raw:
            kw[key] = _typed(raw, key, str, where)
    for key in ("metrics_port", "concurrency", "max_receive_count"):
        if key in raw:
            kw[key] = _typed(raw, key, int, where)
            if kw[key] < (0 if key == "metrics_port" else 1):
                raise ConfigError(f"worker.{key}: must be positive, got {kw[key]}")
    for key in ("max_unacked_seconds", "shutdown_grace_seconds"):
        if key in raw:
            kw[key] = _typed(raw, key, float, where)
            if kw[key] <= 0:
                raise ConfigError(f"worker.{key}: must be a positive number of seconds")
    if "broker_options" in raw:
        kw["broker_options"] = dict(_typed(raw, "broker_options", dict, where))
    if "snapshot_prefixes" in raw:
        prefixes = _typed(raw, "snapshot_prefixes", list, where)
        if not all(isinstance(p, str) and p for p in prefixes):
            raise ConfigError("worker.snapshot_prefixes: expected a list of URI prefixes like \"s3://bucket/\"")
        kw["snapshot_prefixes"] = tuple(prefixes)
    return WorkerSettings(**kw)


def _parse_connection(name: str, raw: dict[str, Any]) -> Connection:
    where = f"connections.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table [connections.{name}]")
    _unknown(raw, _CONNECTION_KEYS, where)
    if "hostname" not in raw:
        raise ConfigError(f"{where}.hostname: missing; set it to your account's API host, e.g. "
                          f"\"myaccount.api-us1.com\" (Settings > Developer in ActiveCampaign)")
    hostname = _typed(raw, "hostname", str, where).strip().lower()
    if "://" in hostname:
        bare = urlsplit(hostname).hostname or hostname.split("://", 1)[1]
        raise ConfigError(f"{where}.hostname: give the hostname only, without a scheme: hostname = \"{bare}\"")
    if "/" in hostname:
        raise ConfigError(f"{where}.hostname: give the hostname only, without a path: "
                          f"hostname = \"{hostname.split('/', 1)[0]}\"")
    if not HOSTNAME_RE.match(hostname):
        raise ConfigError(f"{where}.hostname: {hostname!r} is not a valid hostname; expected e.g. "
                          f"\"myaccount.api-us1.com\"")
    kw: dict[str, Any] = {"name": name, "hostname": hostname}
    for key in ("display_name", "api_key_env", "api_key_file", "export_user", "base_url"):
        if key in raw:
            kw[key] = _typed(raw, key, str, where)
    if ("api_key_env" in kw) == ("api_key_file" in kw):
        raise ConfigError(f"{where}: set exactly one of api_key_env (an environment variable name) or "
                          f"api_key_file (a path to a file holding the key)")
    if "data_privacy_consent" in raw:
        kw["data_privacy_consent"] = _typed(raw, "data_privacy_consent", bool, where)
    if not kw.get("data_privacy_consent"):
        raise ConfigError(f"{where}.data_privacy_consent: must be true: exporting profiles to ActiveCampaign "
                          f"shares personal data; set data_privacy_consent = true once your organisation agrees")
    if "usable_by" in raw:
        roles = _typed(raw, "usable_by", list, where)
        bad = [r for r in roles if r not in ROLES]
        if bad or not roles:
            raise ConfigError(f"{where}.usable_by: expected a non-empty list of {ROLES}, got {roles!r}")
        kw["usable_by"] = tuple(roles)
    for key in ("requests_per_second", "bulk_requests_per_minute"):
        if key in raw:
            kw[key] = _typed(raw, key, float, where)
            if kw[key] <= 0:
                raise ConfigError(f"{where}.{key}: must be a positive number")
    if "base_url" in kw and not _is_loopback_url(kw["base_url"]):
        raise ConfigError(f"{where}.base_url: only loopback URLs (http://127.0.0.1:PORT) are allowed, for tests "
                          f"and the simulator; for a real account remove base_url and set hostname")
    return Connection(**kw)


def _parse_export(name: str, raw: dict[str, Any], connections: dict[str, Connection]) -> Export:
    where = f"exports.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table [exports.{name}]")
    _unknown(raw, _EXPORT_KEYS, where)
    for key in ("segment", "connection", "list_id", "mapping"):
        if key not in raw:
            raise ConfigError(f"{where}.{key}: missing (every export needs segment, connection, list_id, mapping)")
    kw: dict[str, Any] = {"name": name}
    kw["segment"] = _typed(raw, "segment", str, where)
    conn_name = _typed(raw, "connection", str, where)
    if conn_name not in connections:
        known = ", ".join(sorted(connections)) or "none defined"
        raise ConfigError(f"{where}.connection: no connection named {conn_name!r} (known: {known}); "
                          f"add [connections.{conn_name}] or fix the name")
    kw["connection"] = conn_name
    list_id = raw["list_id"]
    if isinstance(list_id, str) and list_id.strip().isdigit():
        raise ConfigError(f"{where}.list_id: must be an integer, not a string: list_id = {list_id.strip()}")
    if not isinstance(list_id, int) or isinstance(list_id, bool) or list_id <= 0:
        raise ConfigError(f"{where}.list_id: must be a positive integer (the list's id in ActiveCampaign), "
                          f"got {list_id!r}")
    kw["list_id"] = list_id
    mapping = _typed(raw, "mapping", dict, where)
    _unknown(mapping, set(MAPPING_KEYS), f"{where}.mapping")
    if not mapping.get("email"):
        raise ConfigError(f"{where}.mapping.email: required; name the profile field holding the email, "
                          f"e.g. mapping = {{ email = \"EmailAddress\" }}")
    for k, v in mapping.items():
        if not isinstance(v, str) or not v:
            raise ConfigError(f"{where}.mapping.{k}: expected the name of a profile field (a string)")
    kw["mapping"] = dict(mapping)
    owner_role = _typed(raw, "owner_role", str, where) if "owner_role" in raw else "admin"
    if owner_role not in ROLES:
        raise ConfigError(f"{where}.owner_role: expected one of {ROLES}, got {owner_role!r}")
    if owner_role not in connections[conn_name].usable_by:
        raise ConfigError(f"{where}.owner_role: {owner_role!r} may not use connection {conn_name!r} "
                          f"(usable_by = {list(connections[conn_name].usable_by)}); add it to usable_by "
                          f"or change owner_role")
    kw["owner_role"] = owner_role
    if "on_leave" in raw:
        on_leave = _typed(raw, "on_leave", str, where)
        if on_leave not in ("unsubscribe", "keep"):
            raise ConfigError(f"{where}.on_leave: expected \"unsubscribe\" or \"keep\", got {on_leave!r}")
        kw["on_leave"] = on_leave
    if "fields" in raw:
        fields = _typed(raw, "fields", dict, where)
        kw["fields"] = {k: _parse_field_mapping(v, f"{where}.fields.{k}") for k, v in fields.items()}
    if "tags" in raw:
        tags = _typed(raw, "tags", list, where)
        if not all(isinstance(t, str) and t.strip() for t in tags):
            raise ConfigError(f"{where}.tags: expected a list of non-empty tag names")
        if any(len(t.strip()) > MAX_TAG for t in tags):
            raise ConfigError(f"{where}.tags: a tag name may have at most {MAX_TAG} characters")
        kw["tags"] = tuple(dict.fromkeys(t.strip() for t in tags))
    if "tag_field" in raw:
        kw["tag_field"] = _typed(raw, "tag_field", str, where)
        if not kw["tag_field"]:
            raise ConfigError(f"{where}.tag_field: expected the name of a profile field (or remove the key)")
    if "tag_separator" in raw:
        kw["tag_separator"] = _typed(raw, "tag_separator", str, where)
        if not kw["tag_separator"]:
            raise ConfigError(f"{where}.tag_separator: must not be empty (e.g. tag_separator = \";\")")
        if "tag_field" not in kw:
            raise ConfigError(f"{where}.tag_separator: only means something with tag_field; add tag_field "
                              f"or remove tag_separator")
    if "exclude_automations" in raw:
        kw["exclude_automations"] = _typed(raw, "exclude_automations", bool, where)
    if "max_profiles" in raw:
        kw["max_profiles"] = _typed(raw, "max_profiles", int, where)
        if kw["max_profiles"] <= 0:
            raise ConfigError(f"{where}.max_profiles: must be a positive integer (or remove it)")
    return Export(**kw)


def _parse_field_mapping(raw: Any, where: str) -> FieldMapping:
    """``"ProfileField"`` or ``{ field = "ProfileField", date_format = "DD/MM/YYYY", separator = "|" }``."""
    if isinstance(raw, str):
        if not raw:
            raise ConfigError(f"{where}: expected the name of a profile field (a string)")
        return FieldMapping(raw)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected the name of a profile field, or a table like "
                          f"{{ field = \"Birthday\", date_format = \"DD/MM/YYYY\" }}")
    _unknown(raw, {"field", "date_format", "separator"}, where)
    source = raw.get("field")
    if not isinstance(source, str) or not source:
        raise ConfigError(f"{where}.field: required; name the profile field holding the value")
    kw: dict[str, Any] = {"source": source}
    if "date_format" in raw:
        fmt = _typed(raw, "date_format", str, where)
        try:
            date_format_regex(fmt)
        except DateFormatError as exc:
            raise ConfigError(f"{where}.date_format: {exc}") from None
        kw["date_format"] = fmt
    if "separator" in raw:
        kw["separator"] = _typed(raw, "separator", str, where)
        if not kw["separator"]:
            raise ConfigError(f"{where}.separator: must not be empty (e.g. separator = \"|\")")
    return FieldMapping(**kw)


def parse_config(data: dict[str, Any], path: str = "") -> Config:
    """Validate a parsed TOML document into a Config (raises ConfigError)."""
    _unknown(data, {"worker", "connections", "exports"}, "top level")
    worker = _parse_worker(data.get("worker", {}))
    raw_conns = data.get("connections", {})
    raw_exports = data.get("exports", {})
    if not isinstance(raw_conns, dict) or not isinstance(raw_exports, dict):
        raise ConfigError("connections and exports must be tables: [connections.NAME], [exports.NAME]")
    connections = {name: _parse_connection(name, raw) for name, raw in raw_conns.items()}
    exports = {name: _parse_export(name, raw, connections) for name, raw in raw_exports.items()}
    return Config(worker=worker, connections=connections, exports=exports, path=path)


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML config file."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p} (pass --config PATH)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return parse_config(data, str(p))


def check_keys(config: Config, exports: list[Export] | None = None) -> None:
    """Fail early when a connection used by these exports has no readable key."""
    for export in exports if exports is not None else list(config.exports.values()):
        config.connections[export.connection].api_key()
