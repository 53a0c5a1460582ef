"""The simulator's knobs: one dataclass, validated, changeable at runtime.

Tests, the demo and the benchmarks all describe the account they want (keys, budget, latency, faults) with
a `SimSettings`; the same names are accepted by `POST /_sim/settings` so a running simulator can be
re-shaped mid-test without a restart. Validation lives here so a typo in a knob fails loudly at once
instead of producing a simulator that silently behaves like the default.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from worker.sim import stamps

DEFAULT_LISTS: dict[int, str] = {1: "Newsletter", 2: "Customers", 3: "VIP", 4: "Prospects", 5: "Partners"}

#: Custom field types ActiveCampaign knows; anything else is refused so fixtures stay realistic.
FIELD_TYPES = frozenset(
    {"text", "textarea", "date", "datetime", "dropdown", "listbox", "radio", "checkbox", "hidden", "number"}
)


def _default_lists() -> dict[int, str]:
    return dict(DEFAULT_LISTS)


@dataclass
class SimSettings:
    """Everything that shapes one simulated ActiveCampaign account.

    The three rate limits are AC's documented figures; `rate_scale` multiplies all of them so benchmarks
    can run ten times faster (or tests ten times slower) with the same arithmetic as production.
    """

    api_keys: tuple[str, ...] = ("sim-key",)
    requests_per_second: float = 5.0
    bulk_per_minute: int = 100
    single_bulk_per_minute: int = 20
    rate_scale: float = 1.0
    processing_delay: float = 1.0
    error_rate: float = 0.0
    latency: float = 0.0
    storm_every: float = 0.0
    storm_duration: float = 0.0
    contact_limit: int | None = None
    lists: dict[int, str] = field(default_factory=_default_lists)
    fields: list[dict[str, Any]] = field(default_factory=list)
    seed: int | None = None
    #: Extra (not in AC's docs): fraction of accepted batches that end with status "failed", nothing applied.
    batch_failure_rate: float = 0.0
    #: Answer a missing or unknown Api-Token with 200 and an HTML login page instead of 401/403, as AC has
    #: been seen to do (issue 8 §5): a client must treat a non-JSON 2xx as an authentication failure.
    bad_key_html: bool = False
    #: Freeze the account's clock (ISO 8601, e.g. "2024-05-01T10:00:00Z") for the records' timestamps
    #: (cdate, udate, sdate, created_timestamp, ...): tests of incremental readers without sleeping.
    #: None follows the wall clock. Rate windows, batch timing and Retry-After never use it.
    frozen_time: str | None = None

    def __post_init__(self) -> None:
        self.api_keys = tuple(self.api_keys)
        self.lists = {int(k): str(v) for k, v in self.lists.items()}
        self.fields = [normalize_field(f) for f in self.fields]
        self.validate()

    def validate(self) -> None:
        """Refuse impossible values; raised as ValueError so `/_sim/settings` can answer 400 with the text."""
        if not self.api_keys or not all(isinstance(k, str) and k for k in self.api_keys):
            raise ValueError("api_keys must hold at least one non-empty string")
        for name in ("requests_per_second", "rate_scale"):
            value = getattr(self, name)
            if not _is_number(value) or not value > 0 or math.isinf(value):
                raise ValueError(f"{name} must be a finite number > 0")
        for name in ("bulk_per_minute", "single_bulk_per_minute"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be an integer > 0")
        for name in ("processing_delay", "latency", "storm_every", "storm_duration"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0 or math.isinf(value):
                raise ValueError(f"{name} must be a finite number >= 0")
        for name in ("error_rate", "batch_failure_rate"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        limit = self.contact_limit
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise ValueError("contact_limit must be null or an integer >= 0")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)):
            raise ValueError("seed must be null or an integer")
        if not isinstance(self.bad_key_html, bool):
            raise ValueError("bad_key_html must be true or false")
        if self.frozen_time is not None:
            if not isinstance(self.frozen_time, str):
                raise ValueError("frozen_time must be null or an ISO 8601 date-time string")
            try:
                stamps.parse_instant(self.frozen_time)
            except ValueError as exc:
                raise ValueError(f"frozen_time: {exc}") from None
        ids = [f["id"] for f in self.fields]
        if len(ids) != len(set(ids)):
            raise ValueError("custom field ids must be unique")

    # Derived limits -------------------------------------------------------------------------------------

    @property
    def effective_rps(self) -> float:
        """Requests per second for the whole v3 API after scaling."""
        return float(self.requests_per_second) * float(self.rate_scale)

    @property
    def effective_bulk_per_minute(self) -> float:
        """Multi-contact bulk imports per minute after scaling."""
        return float(self.bulk_per_minute) * float(self.rate_scale)

    @property
    def effective_single_bulk_per_minute(self) -> float:
        """Single-contact bulk imports per minute after scaling."""
        return float(self.single_bulk_per_minute) * float(self.rate_scale)

    # Runtime changes ------------------------------------------------------------------------------------

    def with_changes(self, knobs: dict[str, Any]) -> SimSettings:
        """A validated copy with `knobs` applied; unknown names are refused rather than ignored."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(knobs) - known)
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["lists"] = dict(self.lists)
        values["fields"] = [dict(f) for f in self.fields]
        values.update(knobs)
        if isinstance(values["api_keys"], str):
            values["api_keys"] = (values["api_keys"],)
        try:
            return SimSettings(**values)
        except (TypeError, AttributeError) as exc:  # e.g. lists given as a list instead of an object
            raise ValueError(f"bad setting value: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        """JSON-ready view (list ids become strings, as JSON object keys must)."""
        out = dataclasses.asdict(self)
        out["api_keys"] = list(self.api_keys)
        out["lists"] = {str(k): v for k, v in self.lists.items()}
        return out


def normalize_field(raw: dict[str, Any]) -> dict[str, Any]:
    """Check one custom field definition and give it its canonical shape.

    Definitions come from Python callers and from JSON, so ids may arrive as strings; they are stored as
    ints because bulk_import references fields by integer id.
    """
    if not isinstance(raw, dict):
        raise ValueError("a custom field must be an object with id, title, type, perstag")
    try:
        field_id = int(raw["id"])
        title = str(raw["title"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"custom field needs an integer id and a title: {raw!r}") from exc
    if field_id <= 0:
        raise ValueError(f"custom field id must be > 0: {raw!r}")
    field_type = str(raw.get("type", "text"))
    if field_type not in FIELD_TYPES:
        raise ValueError(f"custom field type {field_type!r} is not one of {sorted(FIELD_TYPES)}")
    perstag = str(raw.get("perstag") or _perstag_from_title(title))
    options = raw.get("options")
    if options is not None and not (isinstance(options, list) and all(isinstance(o, str) for o in options)):
        raise ValueError(f"custom field options must be a list of strings: {raw!r}")
    out: dict[str, Any] = {"id": field_id, "title": title, "type": field_type, "perstag": perstag}
    if options is not None:
        out["options"] = list(options)
    return out


def _perstag_from_title(title: str) -> str:
    """AC derives a personalization tag from the title when none is given (upper case, underscores)."""
    return "".join(ch if ch.isalnum() else "_" for ch in title.upper()).strip("_") or "FIELD"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)
