"""The TOML configuration: one validated, immutable settings object for the whole process.

The public face of ``worker.settings``: the models (one declaration per key, with its description and
bounds), the loader that reads TOML into them and reports every problem as ``ConfigError`` naming the
key and the fix (the CLI exits with 2), and the JSON Schema generated from the same models.
"""

from __future__ import annotations

from worker.settings.load import load_config, parse_config
from worker.settings.model import (
    MAPPING_KEYS,
    ROLES,
    Config,
    Connection,
    ContactMapping,
    Export,
    FieldMapping,
    WorkerSettings,
)
from worker.settings.spec import ConfigError

__all__ = [
    "MAPPING_KEYS",
    "ROLES",
    "Config",
    "ConfigError",
    "Connection",
    "ContactMapping",
    "Export",
    "FieldMapping",
    "WorkerSettings",
    "load_config",
    "parse_config",
]
