"""schemas/config.json is generated from the models, and the committed file is what they generate.

Why: the schema is what editors check a config with, the models what the worker checks it with. Written
by hand they drifted; generated, they can only differ when someone changed a model and did not
regenerate, and this test says how to.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from worker.settings.schema import COMMAND, config_schema, schema_text

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "schemas" / "config.json"


def test_the_committed_schema_is_the_generated_one() -> None:
    assert COMMITTED.read_text() == schema_text(), (
        f"schemas/config.json differs from the models in worker/settings/model.py; regenerate it from the "
        f"repository's root with:\n    {COMMAND}")


def test_the_regenerate_command_prints_the_schema() -> None:
    """The command the failure message prints is the one that writes the file (run without the shell's ``>``)."""
    out = subprocess.run([sys.executable, "-m", "worker.settings.schema"], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout == schema_text()
    assert json.loads(out.stdout)["$defs"]["worker"]["properties"]["lease_seconds"]["default"] == 30


def _properties(schema: Any, where: str = "#") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(schema, dict):
        for name, sub in schema.get("properties", {}).items():
            found.append((f"{where}/properties/{name}", sub))
        for key in ("$defs",):
            for name, sub in schema.get(key, {}).items():
                found += _properties(sub, f"{where}/{key}/{name}")
        for key in ("properties",):
            for name, sub in schema.get(key, {}).items():
                found += _properties(sub, f"{where}/{key}/{name}")
        for i, sub in enumerate(schema.get("oneOf", [])):
            found += _properties(sub, f"{where}/oneOf/{i}")
    return found


def test_every_key_is_described_for_the_editor() -> None:
    """An editor shows the description on hover; a key without one is a key nobody can look up."""
    props = _properties(config_schema())
    assert len(props) > 40
    for where, sub in props:
        if "$ref" in sub:
            target = config_schema()["$defs"][sub["$ref"].rsplit("/", 1)[1]]
            assert target.get("description"), f"{sub['$ref']} has no description"
            continue
        assert isinstance(sub.get("description"), str) and len(sub["description"]) > 10, \
            f"{where} has no description: give its key(...) a sentence in worker/settings/model.py"
