"""Which optional extras a config will need, where the config can tell (``config check`` says so).

Why: a missing extra otherwise shows only when the first run meets an Azure location or a Parquet part.
The config can tell for Azure (``state_url`` and ``snapshot_prefixes`` on ``az://``/``abfss://``); whether
snapshots will be Parquet it cannot (events name them), so that extra is named by the run's error instead.
"""

from __future__ import annotations

import importlib

from worker.settings.model import Config

#: extra -> the module it provides
EXTRAS = {"azure": "azure.storage.blob", "parquet": "pyarrow"}
_AZURE = ("az://", "abfss://")


def needed_extras(config: Config) -> dict[str, str]:
    """extra -> why this config needs it."""
    needed: dict[str, str] = {}
    if config.worker.state_url.lower().startswith(_AZURE):
        needed["azure"] = "state_url is on Azure Blob Storage"
    elif any(p.lower().startswith(_AZURE) for p in config.worker.snapshot_prefixes or ()):
        needed["azure"] = "snapshot_prefixes name Azure Blob Storage"
    return needed


def installed(extra: str) -> bool:
    """The extra's module can be imported here (imported, not only found: a broken install counts as missing)."""
    try:
        importlib.import_module(EXTRAS[extra])
    except ImportError:
        return False
    return True
