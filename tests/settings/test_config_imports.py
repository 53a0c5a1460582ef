"""The config modules import none of the code that uses them; logging imports neither.

Why: ``config`` and ``fields`` used to import each other, and ``logs`` pulled in the mapper (and with it
the config and the converters) for one function. Each is checked in a fresh interpreter, where only
what the import really needs gets loaded.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _loaded_after(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(m for m in sys.modules if m.startswith('worker')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


@pytest.mark.parametrize(("module", "never"), [
    ("worker.privacy.logs", {"worker.contacts.mapping", "worker.settings", "worker.contacts.fields"}),
    ("worker.settings", {"worker.contacts.fields", "worker.contacts.mapping", "worker.run.engine",
                         "worker.privacy.logs"}),
    ("worker.settings.rules", {"worker.contacts.fields", "worker.contacts.mapping", "worker.run.engine"}),
    ("worker.privacy.masking", {"worker.contacts.mapping", "worker.settings", "worker.contacts.fields"}),
])
def test_module_does_not_load(module: str, never: set[str]) -> None:
    loaded = _loaded_after(module)
    assert module in loaded
    assert not loaded & never, f"importing {module} loads {sorted(loaded & never)}"


def test_mask_email_is_one_function_wherever_it_is_imported_from() -> None:
    from worker.contacts import mapping
    from worker.privacy import masking

    assert mapping.mask_email is masking.mask_email
    assert masking.mask_email("alice@example.com") == "a***@example.com"


def test_the_package_declares_its_types() -> None:
    """pyproject.toml ships worker/py.typed (PEP 561): type checkers then read our annotations."""
    assert (ROOT / "worker" / "py.typed").is_file()
    assert 'worker = ["py.typed"]' in (ROOT / "pyproject.toml").read_text()
