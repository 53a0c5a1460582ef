"""The config file, declared once, and its public face: import ``Config``, ``Export``, ``load_config``, ...
from here.

The models (``model``: one declaration per key, with its description and bounds), how a key is declared
(``spec``), the loader that reads TOML into the models and reports every problem as ``ConfigError`` naming
the key and the fix (the CLI exits with 2; ``load``), the JSON Schema generated from the same models
(``schema``) and the value rules shared with the converters (``rules``).

May import: ``worker.privacy`` (a key is a ``Secret`` from the moment it is read), ``worker.locations``
(``snapshot_prefixes`` are normalised by the same function as every location).
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
    IngressSettings,
    Segment,
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
    "IngressSettings",
    "Segment",
    "WorkerSettings",
    "load_config",
    "parse_config",
]
