"""The package map in README.md stays true: every module is on it, and the layers keep their imports.

Why a test: "the engine knows nothing of brokers, the broker layer nothing of ActiveCampaign, the core
calls hooks, not Prometheus" are easy to break with one convenient import; this reads every module's
imports (module level and inside functions) and fails naming the offending line.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "worker"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def _in(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


#: layer (a module prefix) -> the worker modules it may import besides its own (stdlib and third parties free)
RULES: dict[str, tuple[str, ...]] = {
    "worker.broker": (),
    "worker.snapshot": ("worker.aws",),
    "worker.state": ("worker.aws",),
    "worker.activecampaign": ("worker.secret", "worker.redis_clients", "worker.instants"),
    "worker.leases": ("worker.state", "worker.redis_clients"),
    "worker.syncstate": ("worker.state",),
    "worker.settings": ("worker.secret",),
    "worker.sim": (),
}
#: modules that make up the run (the engine and what it delegates to): never a broker, the worker or the CLI
CORE = ("worker.engine", "worker.runs", "worker.checks", "worker.dryrun", "worker.plan", "worker.pipeline",
        "worker.commit", "worker.runbook", "worker.report", "worker.guard", "worker.synced", "worker.mapping",
        "worker.fields", "worker.hooks")


@pytest.mark.parametrize("layer", sorted(RULES))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    allowed = (layer, *RULES[layer])
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for module, path in MODULES.items() if _in(module, layer)
           for line, name in _imports(path) if name.startswith("worker") and not _in(name, *allowed)]
    assert not bad, f"{layer} may only import {allowed}: " + "; ".join(bad)


def test_the_run_knows_no_broker_no_worker_no_cli_and_no_prometheus() -> None:
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for module, path in MODULES.items() if module in CORE
           for line, name in _imports(path)
           if _in(name, "worker.broker", "worker.service", "worker.commands", "worker.cli", "kombu",
                  "prometheus_client", "worker.metrics", "worker.sim")]
    assert not bad, "; ".join(bad)


def test_only_metrics_and_health_import_prometheus() -> None:
    users = {module for module, path in MODULES.items()
             if any(_in(name, "prometheus_client") for _, name in _imports(path))}
    assert users <= {"worker.metrics", "worker.health"}, users


def test_readme_package_map_lists_every_module_and_nothing_else() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("### Package map", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^- `(worker[\w.]*)`", section, flags=re.M))
    assert listed, "README.md has no package map entries"
    missing = sorted(set(MODULES) - listed)
    stale = sorted(listed - set(MODULES))
    assert not missing and not stale, f"README package map: missing {missing}, not in the package {stale}"
