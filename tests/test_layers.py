"""The README's package map stays true: every package is on it, each keeps to what it may import.

Why a test: "the run knows nothing of brokers, the broker layer nothing of ActiveCampaign, the core calls
hooks, not Prometheus" are easy to break with one convenient import. The rules are written once, in
README.md's package map (``May import: ...`` on each package's line); this reads them from there, reads
every module's imports (module level and inside functions) and fails naming the offending line. Rules are
per package, so a new module in a package needs no new line anywhere.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "worker"
#: modules that may stand at the top of the package, beside the packages (README says why)
TOP_MODULES = {"__init__", "__main__", "cli"}


def _unit(path: Path) -> str:
    """The package (``worker.run``) or top-level module (``worker.cli``) a file belongs to."""
    rel = path.relative_to(PACKAGE)
    return "worker." + (rel.parts[0] if len(rel.parts) > 1 else rel.stem)


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            if node.module == "worker":  # ``from worker import x``: x is what is imported
                out.extend((node.lineno, f"worker.{a.name}") for a in node.names if a.name != "__version__")
    return out


def _target(name: str) -> str | None:
    """The package or top-level module an imported name belongs to (None: not ours, or the root)."""
    parts = name.split(".")
    if parts[0] != "worker" or len(parts) == 1:
        return None
    return f"worker.{parts[1]}"


def _readme_map() -> dict[str, set[str] | None]:
    """README's package map: unit -> what it may import of ``worker`` (None: anything)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Package map", 1)[1].split("\n## ", 1)[0]
    rules: dict[str, set[str] | None] = {}
    for unit, rest in re.findall(r"^- `(worker(?:\.\w+)?)`: (.*)$", section, flags=re.M):
        may = re.search(r"May import: (.*?)(?:\.\s|\.$|$)", rest)
        assert may, f"README package map: the line of {unit} does not say what it may import ('May import: ...')"
        names = may.group(1)
        rules[unit] = None if names.startswith("anything") else set(re.findall(r"`(worker\.\w+)`", names))
    return rules


RULES = _readme_map()
FILES = sorted(PACKAGE.rglob("*.py"))


def test_readme_package_map_lists_every_package_and_nothing_else() -> None:
    units = {_unit(p) for p in FILES} - {"worker.__init__"}
    missing, stale = sorted(units - set(RULES)), sorted(set(RULES) - units)
    assert not missing and not stale, f"README package map: missing {missing}, not in the package {stale}"


def test_the_top_level_holds_only_packages_and_the_entry_points() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.stem not in TOP_MODULES)
    assert not loose, f"worker/ holds modules outside any package: {loose}; put each in the package it belongs to"


@pytest.mark.parametrize("unit", sorted(RULES))
def test_each_part_imports_only_what_the_map_allows(unit: str) -> None:
    allowed = RULES[unit]
    if allowed is None:
        return
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for path in FILES if _unit(path) == unit
           for line, name in _imports(path)
           if (target := _target(name)) is not None and target != unit and target not in allowed]
    assert not bad, f"{unit} may only import {sorted(allowed)}: " + "; ".join(bad)


@pytest.mark.parametrize("unit", sorted(u for u in RULES if (PACKAGE / u.split(".")[1]).is_dir()))
def test_each_package_docstring_says_what_it_may_import_as_the_map_does(unit: str) -> None:
    init = PACKAGE / unit.split(".")[1] / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    may = re.search(r"May import:(.*?)(?:\n\n|$)", doc, flags=re.S)
    assert may, f"{init.relative_to(ROOT)}: its docstring does not say what the package may import ('May import:')"
    said = set(re.findall(r"``(worker\.\w+)``", may.group(1)))
    allowed = RULES[unit]
    if allowed is not None:
        assert said == allowed, f"{init.relative_to(ROOT)} says it may import {sorted(said)}, README {sorted(allowed)}"


def test_the_run_knows_no_broker_no_service_no_cli_no_simulator_and_no_prometheus() -> None:
    never = ("worker.broker", "worker.service", "worker.commands", "worker.cli", "worker.sim")
    assert not (RULES["worker.run"] or set()) & set(never)
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for path in FILES if _unit(path) == "worker.run"
           for line, name in _imports(path)
           if any(name == n or name.startswith(n + ".") for n in (*never, "kombu", "prometheus_client"))]
    assert not bad, "; ".join(bad)


def test_only_the_services_metrics_and_health_import_prometheus() -> None:
    users = {str(path.relative_to(ROOT)) for path in FILES
             if any(name.split(".")[0] == "prometheus_client" for _, name in _imports(path))}
    assert users <= {"worker/service/metrics.py", "worker/service/health.py"}, users


def test_activecampaign_imports_nothing_of_runs_brokers_or_state() -> None:
    assert not (RULES["worker.activecampaign"] or set()) & {
        "worker.run", "worker.contacts", "worker.broker", "worker.state", "worker.syncstate", "worker.leases"}


def test_the_simulator_shares_no_product_code() -> None:
    assert RULES["worker.sim"] == set()
