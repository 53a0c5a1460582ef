"""The config's models: every key of the TOML file, once, with its type, default, bounds and description.

A key is a dataclass field declared with ``key(...)`` (see ``worker.settings.spec``). The loader reads
files into these classes and the JSON Schema is generated from them, so adding a key here is the whole
change (then regenerate the schema: ``python -m worker.settings.schema > schemas/config.json``). Rules
between keys are the models' ``check`` methods. Keys themselves are read at run time, held in a
``Secret`` and never printed.
"""

from __future__ import annotations

import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from worker.locations import LocationError, compile_glob, locate
from worker.privacy.secret import Secret
from worker.settings.rules import (
    DATE_FORMAT_PATTERN,
    HOSTNAME_PATTERN,
    LEASE_PER_REQUEST,
    LOOPBACK_URL_PATTERN,
    MAX_TAG,
    REDIS_URL_PATTERN,
    DateFormatError,
    date_format_regex,
)
from worker.settings.spec import ConfigError, Table, key, keys_of

Role = Literal["admin", "contributor"]
ROLES: tuple[Role, ...] = typing.get_args(Role)
OnLeave = Literal["unsubscribe", "keep"]


# ------------------------------------------------------------------------------------------- checks
def _hostname(value: str, path: str) -> str:
    """People paste the URL from Settings > Developer; say exactly what to keep of it."""
    host = value.strip().lower()
    if "://" in host:
        bare = urlsplit(host).hostname or host.split("://", 1)[1]
        raise ConfigError(f"{path}: give the hostname only, without a scheme: hostname = \"{bare}\"")
    if "/" in host:
        raise ConfigError(f"{path}: give the hostname only, without a path: hostname = \"{host.split('/', 1)[0]}\"")
    return host


def _date_format(value: str, path: str) -> str:
    """The converter's own reading of the format, so a format it cannot read never reaches a run."""
    try:
        date_format_regex(value)
    except DateFormatError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return value


def _snapshot_prefixes(value: tuple[str, ...], path: str) -> tuple[str, ...]:
    """Each prefix must name a place, read by the one location function the worker checks events with."""
    for i, prefix in enumerate(value):
        try:
            locate(prefix)
        except LocationError as exc:
            raise ConfigError(f"{path}[{i}]: {exc}") from None
    return value


def _triggers(value: tuple[str, ...], path: str) -> tuple[str, ...]:
    """Each trigger must compile, by the same glob rules the worker matches notifications with."""
    for i, pattern in enumerate(value):
        try:
            compile_glob(pattern)
        except LocationError as exc:
            raise ConfigError(f"{path}[{i}]: {exc}") from None
    return value


def _tag_names(value: tuple[str, ...], path: str) -> tuple[str, ...]:
    """Trimmed, first spelling kept; blank ones are then refused by the item pattern."""
    return tuple(dict.fromkeys(t.strip() for t in value))


# ------------------------------------------------------------------------------------------- worker
@dataclass(frozen=True)
class WorkerSettings(Table):
    """Settings of the long-running worker (segment-export run).

    The URLs that may hold a password (broker, state store, Redis) are left out of ``repr``, so logging
    the settings never logs one.
    """

    DEF_NAME = "worker"

    broker_url: str = field(default="amqp://guest:guest@127.0.0.1:5672//", repr=False, metadata=key(
        "amqp://..., sqs://... or memory:// (one process only).", redact=True))
    requests_queue: str = field(default="segment-export-requests", metadata=key(
        "Queue of segment.refreshed / export.requested events; its dead-letter queue is this name plus -dlq.",
        min_length=1))
    events_exchange: str = field(default="segment-export-events", metadata=key(
        "Where export.completed / export.failed are published.", min_length=1))
    state_url: str = field(default="file://./state", repr=False, metadata=key(
        "file://PATH, s3://bucket/prefix or az://container/prefix: synced state, run records, failure reports.",
        min_length=1, redact=True))
    metrics_port: int = field(default=9108, metadata=key(
        "Port of /metrics, /healthz and /readyz; 0 turns them off.", minimum=0, maximum=65535))
    snapshot_prefixes: tuple[str, ...] | None = field(default=None, metadata=key(
        "Snapshot URIs that events may name, e.g. [\"s3://cdp-exports/\"]; unset: all. Each is a folder (a "
        "missing trailing slash is added); locations are decoded, normalised and resolved, then compared on "
        "whole segments.", min_length=1, check=_snapshot_prefixes,
        example='snapshot_prefixes = ["s3://cdp-exports/", "file:///data/segments/"]'))
    concurrency: int = field(default=4, metadata=key(
        "Runs at once per replica (the prefetch count).", minimum=1))
    max_unacked_seconds: float = field(default=600.0, metadata=key(
        "A run longer than this checkpoints and continues in a new delivery.", exclusive_minimum=0))
    shutdown_grace_seconds: float = field(default=30.0, metadata=key(
        "On SIGTERM, how long runs in flight get to checkpoint and hand themselves on.", exclusive_minimum=0))
    max_receive_count: int = field(default=5, metadata=key(
        "Deliveries before a message is dead-lettered.", minimum=1))
    broker_options: dict[str, Any] = field(default_factory=dict, metadata=key(
        "kombu transport options, e.g. { region = \"eu-west-1\" } for SQS."))
    redis_url: str | None = field(default=None, repr=False, metadata=key(
        "Redis shared by the replicas, for each account's rate budget and the export leases: "
        "redis://host:port/db, rediss:// (TLS) or unix:///path/to/socket. Unset: one replica, both kept "
        "in the process.", pattern=REDIS_URL_PATTERN, redact=True,
        why="expected a redis://, rediss:// or unix:// URL", example='redis_url = "redis://redis:6379/0"'))
    expected_replicas: int = field(default=3, metadata=key(
        "How many replicas share an account's budget: while Redis is unreachable each one uses this "
        "share of it.", minimum=1))
    run_retry_base_seconds: float = field(default=30.0, metadata=key(
        "Delay before a run that failed transiently is retried; it doubles with each attempt, up to 900 "
        "seconds.", exclusive_minimum=0))
    max_run_attempts: int = field(default=5, metadata=key(
        "Attempts of a run that keeps failing transiently; only the last one publishes export.failed.",
        minimum=1))
    retention_days: float = field(default=30.0, metadata=key(
        "Run records and failure reports older than this are removed (segment-export state prune).",
        exclusive_minimum=0))
    lease_seconds: float = field(default=30.0, metadata=key(
        "Time to live of an export's lease (one run per export across replicas), renewed every third of it; "
        "at least 3 times request_timeout_seconds.", minimum=1))
    request_timeout_seconds: float = field(default=10.0, metadata=key(
        "How long one ActiveCampaign request may take before it is given up (and retried).",
        exclusive_minimum=0))

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.requests_queue}-dlq"

    def check(self, given: frozenset[str], where: str) -> None:
        # A bulk import may only leave while the lease will outlast it and the record of its batchId
        # (worker.run.fence); right before a renewal the lease has about half its time to live left.
        if self.lease_seconds < LEASE_PER_REQUEST * self.request_timeout_seconds:
            raise ConfigError(
                f"{where}.lease_seconds: {self.lease_seconds:g} is too short for request_timeout_seconds = "
                f"{self.request_timeout_seconds:g}: a bulk import in flight could outlive the lease, and another "
                f"replica could send its batch again. Set lease_seconds to at least "
                f"{LEASE_PER_REQUEST * self.request_timeout_seconds:g} or lower request_timeout_seconds")


# ------------------------------------------------------------------------------------------- connections
@dataclass(frozen=True)
class Connection(Table):
    """One ActiveCampaign account. Set exactly one of api_key_env or api_key_file."""

    DEF_NAME = "connection"
    SCHEMA_RULES: ClassVar[dict[str, Any]] = {"oneOf": [{"required": ["api_key_env"]},
                                                        {"required": ["api_key_file"]}]}

    name: str
    hostname: str = field(metadata=key(
        "The account's API host only, e.g. myaccount.api-us1.com (no https://, no path).",
        pattern=HOSTNAME_PATTERN, check=_hostname, example='hostname = "myaccount.api-us1.com"',
        why="not a valid hostname; it is the API URL of Settings > Developer in ActiveCampaign without "
            "https://"))
    display_name: str = field(default="", metadata=key("A name for people (logs, the online check)."))
    api_key_env: str | None = field(default=None, metadata=key(
        "Name of the environment variable holding the API key.", min_length=1))
    api_key_file: str | None = field(default=None, metadata=key(
        "Path of a file holding the API key.", min_length=1))
    data_privacy_consent: bool = field(default=False, metadata=key(
        "Must be true: exporting shares personal data with ActiveCampaign.", required=True, const=True,
        example="data_privacy_consent = true",
        why="exporting profiles to ActiveCampaign shares personal data; set data_privacy_consent = true once "
            "your organisation agrees"))
    usable_by: tuple[Role, ...] = field(default=("admin",), metadata=key(
        "The roles whose exports may use this account.", min_items=1,
        example='usable_by = ["admin", "contributor"]'))
    export_user: str | None = field(default=None, metadata=key("Who runs exports on this connection (audit)."))
    base_url: str | None = field(default=None, metadata=key(
        "Tests and the simulator only: a loopback URL.", pattern=LOOPBACK_URL_PATTERN,
        why="only loopback URLs (http://127.0.0.1:PORT) are allowed, for tests and the simulator; for a real "
            "account remove base_url and set hostname"))
    requests_per_second: float = field(default=5.0, metadata=key(
        "The account's request budget.", exclusive_minimum=0))
    bulk_requests_per_minute: float = field(default=100.0, metadata=key(
        "The account's budget of bulk imports.", exclusive_minimum=0))

    def check(self, given: frozenset[str], where: str) -> None:
        if (self.api_key_env is None) == (self.api_key_file is None):
            raise ConfigError(f"{where}: set exactly one of api_key_env (an environment variable name) or "
                              f"api_key_file (a path to a file holding the key)")

    @property
    def api_url(self) -> str:
        """Where requests go: the account's HTTPS API host, or a loopback simulator in tests."""
        return self.base_url or f"https://{self.hostname}"

    @property
    def account(self) -> str:
        """Which ActiveCampaign account this is, however ``api_url`` is spelled (case, a trailing slash or dot,
        a default port, ``/api/3`` or not, ``localhost`` for 127.0.0.1): exports of one account share its tags
        (managed tags)."""
        parts = urlsplit(self.api_url.strip())
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower().rstrip(".")
        host = "127.0.0.1" if host in ("localhost", "::1", "[::1]") else host
        port = parts.port or (443 if scheme == "https" else 80)
        path = parts.path.rstrip("/")
        path = path.removesuffix("/api/3").rstrip("/")  # the client adds it when it is not there
        return f"{scheme}://{host}:{port}{path}"

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


# ------------------------------------------------------------------------------------------- exports
_PROFILE_FIELD = "The name of a profile field in the snapshot."


@dataclass(frozen=True)
class ContactMapping(Table):
    """Contact fields -> profile fields; email is required."""

    email: str = field(metadata=key(_PROFILE_FIELD, min_length=1, example='mapping = { email = "EmailAddress" }'))
    first_name: str | None = field(default=None, metadata=key(_PROFILE_FIELD, min_length=1))
    last_name: str | None = field(default=None, metadata=key(_PROFILE_FIELD, min_length=1))
    phone: str | None = field(default=None, metadata=key(_PROFILE_FIELD, min_length=1))


MAPPING_KEYS = keys_of(ContactMapping)


@dataclass(frozen=True)
class FieldMapping(Table):
    """Where one custom field's value comes from, and how to read it: the name of a profile field, or a table
    { field = "Birthday", date_format = "DD/MM/YYYY", separator = "|" }.

    ``source`` is the profile field. ``date_format`` (e.g. ``"DD/MM/YYYY"``) is only for date and
    datetime fields: day-first and month-first dates look alike, so they are never guessed, only read
    when the mapping says which it is. ``separator`` splits a text value for a multi-value field
    (listbox, checkbox); lists need no separator.
    """

    DEF_NAME = "field_mapping"
    SHORTHAND = "source"
    SHORTHAND_TEXT = "the name of a profile field"

    source: str = field(metadata=key(_PROFILE_FIELD, toml="field", min_length=1,
                                     example='BIRTHDAY = { field = "Birthday", date_format = "DD/MM/YYYY" }'))
    date_format: str | None = field(default=None, metadata=key(
        "Date and datetime fields only: how the profile writes dates, from the tokens YYYY MM DD HH mm ss, "
        "e.g. \"DD/MM/YYYY\". ISO 8601 and epoch seconds are always read.", pattern=DATE_FORMAT_PATTERN,
        check=_date_format))
    separator: str = field(default=",", metadata=key(
        "Multi-value fields (listbox, checkbox): what separates values in a text value.", min_length=1,
        example='separator = "|"'))


@dataclass(frozen=True)
class Export(Table):
    """One export: a segment synced to one list of one connection."""

    DEF_NAME = "export"

    name: str
    segment: str = field(metadata=key("The segment id of segment.refreshed events.", min_length=1,
                                      example='segment = "vip-customers"'))
    connection: str = field(metadata=key("The name of a [connections.NAME] table.", min_length=1))
    list_id: int = field(metadata=key("The list's id in ActiveCampaign.", minimum=1, example="list_id = 3"))
    mapping: dict[str, str] = field(metadata=key(
        "Contact fields -> profile fields; email is required.", table=ContactMapping,
        example='mapping = { email = "EmailAddress", first_name = "FirstName" }'))
    owner_role: Role = field(default="admin", metadata=key("Must be in the connection's usable_by."))
    on_leave: OnLeave = field(default="unsubscribe", metadata=key(
        "What happens to contacts who left the segment (never deleted)."))
    fields: dict[str, FieldMapping] = field(default_factory=dict, metadata=key(
        "Custom fields by personalization tag (or title) -> the profile field holding the value, or a table "
        "{ field = \"Birthday\", date_format = \"DD/MM/YYYY\", separator = \"|\" }. Values are converted to "
        "what the field's type takes; a value that cannot be converted makes only that contact invalid."))
    tags: tuple[str, ...] = field(default=(), metadata=key(
        "Static tags added to every contact of this export.", pattern=r"\S", max_length=MAX_TAG,
        check=_tag_names, why="a tag name must not be blank"))
    tag_field: str | None = field(default=None, metadata=key(
        "A profile field holding tag names: a list of text, or text split on tag_separator. Names are "
        "trimmed and empty ones dropped; a number, null or nested value makes the contact invalid.",
        min_length=1))
    tag_separator: str = field(default=",", metadata=key(
        "What separates tag names when tag_field holds text (needs tag_field).", min_length=1,
        example='tag_separator = ";"'))
    exclude_automations: bool = field(default=False, metadata=key(
        "Ask ActiveCampaign not to run automations for these imports (default false, as in ActiveCampaign)."))
    max_profiles: int | None = field(default=None, metadata=key(
        "A cap: a snapshot with more profiles fails the run before anything is sent.", minimum=1))
    max_removal_fraction: float = field(default=0.2, metadata=key(
        "Removal guard: a run that would unsubscribe more than this share of the export's synced subscribed "
        "contacts fails with removal_guard before any request (--allow-mass-removal overrides one run).",
        minimum=0, maximum=1))
    max_removals: int | None = field(default=None, metadata=key(
        "Removal guard, as a count: a run that would unsubscribe more than this many contacts fails the "
        "same way. Unset: only max_removal_fraction applies.", minimum=0))
    readmit: bool = field(default=True, metadata=key(
        "Re-subscribe contacts that re-enter the segment after this export unsubscribed them; never those "
        "who unsubscribed themselves in ActiveCampaign."))
    readmit_days: float = field(default=90.0, metadata=key(
        "How long the synced state remembers a contact this export unsubscribed (for re-entry). After that "
        "the entry is forgotten, so the state stops growing with churn; a person who comes back later is sent "
        "as new, and ActiveCampaign keeps them unsubscribed (counted skipped).", exclusive_minimum=0))
    owns_list: bool = field(default=False, metadata=key(
        "Only this export subscribes people to this list. The drift check then expects ActiveCampaign's "
        "subscribed count to equal the export's (not only to be no smaller), and verify reports subscribed "
        "contacts the export never sent (--repair has the next run unsubscribe them, behind the removal "
        "guard)."))
    require_marker: bool = field(default=False, metadata=key(
        "Refuse a snapshot that does not show it is whole (snapshot_incomplete, before anything is read or "
        "sent): a folder needs the _SUCCESS marker its job writes when it commits; a manifest or a CDM "
        "model.json is its own marker; a single file is refused."))
    snapshot_entity: str | None = field(default=None, metadata=key(
        "The entity to read when the snapshot is a CDM model.json holding several (by its name).",
        min_length=1, example='snapshot_entity = "VipCustomers"'))
    remove_tags: bool = field(default=True, metadata=key(
        "Remove the tags this export added once they no longer apply: a leaver loses them, a contact whose "
        "tag_field no longer holds a value loses that tag. Tags others added are never touched. Removal "
        "costs 2 or 3 requests a contact on the non-bulk budget; false keeps every tag."))

    def check(self, given: frozenset[str], where: str) -> None:
        # Not in the schema as if/then: fastjsonschema fills tag_separator's default before "if" looks.
        if "tag_separator" in given and "tag_field" not in given:
            raise ConfigError(f"{where}.tag_separator: only means something with tag_field; add tag_field "
                              f"or remove tag_separator")


# ------------------------------------------------------------------------------------------- ingress
@dataclass(frozen=True)
class IngressSettings(Table):
    """Settings of the HTTP ingress (segment-export ingress): webhooks in, the requests queue out.

    Callers authenticate with a bearer token; tokens come from the environment variable ``tokens_env``
    and/or the file ``tokens_file`` (one or more, separated by whitespace or commas: several for
    rotation). The file is read again when it changes, so a mounted secret rotates without a restart.
    """

    DEF_NAME = "ingress"

    port: int = field(default=8080, metadata=key(
        "Port of POST /events, /metrics and /healthz.", minimum=1, maximum=65535))
    tokens_env: str | None = field(default="SEGMENT_EXPORT_INGRESS_TOKENS", metadata=key(
        "Environment variable holding the accepted bearer tokens (whitespace or comma separated).", min_length=1))
    tokens_file: str | None = field(default=None, metadata=key(
        "A file holding accepted bearer tokens (e.g. a mounted Kubernetes secret), re-read when it changes; "
        "entries under 16 characters are ignored, a deleted or empty file revokes its tokens.",
        min_length=1))
    max_body_bytes: int = field(default=1_048_576, metadata=key(
        "Largest request body accepted (413 above it); Event Grid batches are at most 1 MiB.",
        minimum=1024, maximum=16_777_216))
    webhook_origins: tuple[str, ...] = field(default=("eventgrid.azure.net",), metadata=key(
        "Origins allowed by the CloudEvents webhook handshake (OPTIONS with WebHook-Request-Origin).",
        min_length=1))
    publish_timeout_seconds: float = field(default=10.0, metadata=key(
        "How long a request waits for the broker to confirm before it is answered 503 (and how long the ingress "
        "waits for the broker at start).", exclusive_minimum=0))


# ------------------------------------------------------------------------------------------- segments
@dataclass(frozen=True)
class Segment(Table):
    """A segment's settings: which written objects announce its refresh (its exports name it by ``segment``).

    ``triggers`` are globs on the decoded location of an object an S3 event notification or an Event
    Grid BlobCreated announces (``*`` within one folder, ``**`` zero or more folders); a created object
    that matches starts a run of every export of the segment, reading the snapshot the object marks: its
    folder for a marker whose name starts with ``_`` (``_SUCCESS``), else the object itself (a manifest,
    a ``model.json``, one file).
    """

    DEF_NAME = "segment"

    name: str
    triggers: tuple[str, ...] = field(default=(), metadata=key(
        "Globs on the decoded location of objects whose creation announces a refresh of this segment, e.g. "
        "[\"s3://cdp-exports/vip/*/_SUCCESS\", \"az://insights/CustomerInsights_*/vip/model.json\"]: * stays "
        "within one folder, ** is zero or more folders; az:// is the worker's own storage account, abfss:// "
        "names one.", min_length=1,
        check=_triggers, example='triggers = ["s3://cdp-exports/vip/*/_SUCCESS"]'))


# ------------------------------------------------------------------------------------------- the file
@dataclass(frozen=True)
class Config(Table):
    """The TOML file given to segment-export with --config."""

    worker: WorkerSettings = field(default_factory=WorkerSettings, metadata=key(
        "Settings of the long-running worker (segment-export run)."))
    connections: dict[str, Connection] = field(default_factory=dict, metadata=key(
        "ActiveCampaign accounts, one table per connection: [connections.NAME]."))
    exports: dict[str, Export] = field(default_factory=dict, metadata=key(
        "Exports, one table per export: [exports.NAME] (segment -> connection + list)."))
    segments: dict[str, Segment] = field(default_factory=dict, metadata=key(
        "Segments, one table per segment id: [segments.ID], with the triggers that announce its refresh."))
    ingress: IngressSettings = field(default_factory=IngressSettings, metadata=key(
        "Settings of the HTTP ingress (segment-export ingress)."))
    path: str = ""

    def check(self, given: frozenset[str], where: str) -> None:
        """References between tables: an export's connection exists and its owner may use it."""
        for export in self.exports.values():
            at = f"exports.{export.name}"
            conn = self.connections.get(export.connection)
            if conn is None:
                known = ", ".join(sorted(self.connections)) or "none defined"
                raise ConfigError(f"{at}.connection: no connection named {export.connection!r} (known: {known}); "
                                  f"add [connections.{export.connection}] or fix the name")
            if export.owner_role not in conn.usable_by:
                raise ConfigError(f"{at}.owner_role: {export.owner_role!r} may not use connection {conn.name!r} "
                                  f"(usable_by = {list(conn.usable_by)}); add it to usable_by or change owner_role")
        self._check_shared_tags()
        for segment in self.segments.values():
            if segment.triggers and not self.exports_for_segment(segment.name):
                known = ", ".join(sorted({e.segment for e in self.exports.values()})) or "none"
                raise ConfigError(f"segments.{segment.name}.triggers: no export has segment = {segment.name!r}, so "
                                  f"a trigger would start nothing (segments of the exports: {known}); fix the "
                                  f"table's name or add the export")

    def _check_shared_tags(self) -> None:
        """A tag an export removes when it stops applying (``remove_tags``) is that export's alone on its
        ActiveCampaign account: tags are the account's, so another export adding the same name would have
        its tag taken back, and which of two exports sent a tag link first cannot be told from AC."""
        by_account: dict[tuple[str, str], list[Export]] = {}
        for export in sorted(self.exports.values(), key=lambda e: e.name):
            conn = self.connections[export.connection]
            for tag in dict.fromkeys(t.casefold() for t in export.tags or ()):
                by_account.setdefault((conn.account, tag), []).append(export)
        for (_, tag), exports in by_account.items():
            removing = [e.name for e in exports if e.remove_tags]
            if len(exports) > 1 and removing:
                names = [e.name for e in exports]
                raise ConfigError(
                    f"exports.{names[0]}.tags and exports.{names[1]}.tags: both add the tag {tag!r} on one "
                    f"ActiveCampaign account, and {', '.join(removing)} remove(s) the tags it added when they stop "
                    f"applying (remove_tags = true, the default): one export would take back the tag the other "
                    f"gives. Give each export its own tag names (e.g. \"segment:{names[0]}\" and "
                    f"\"segment:{names[1]}\"), or set remove_tags = false on every export that adds {tag!r}")

    def exports_for_segment(self, segment: str) -> list[Export]:
        return [e for e in self.exports.values() if e.segment == segment]

    def export(self, name: str) -> Export:
        try:
            return self.exports[name]
        except KeyError:
            known = ", ".join(sorted(self.exports)) or "none"
            raise ConfigError(f"no export named {name!r} in {self.path or 'the config'} (known: {known})") from None
