"""Reading what ships in deploy/: the rendered overlays, the config inside them, the Dockerfile.

The tests compare these with each other and with the worker's own config parser, because each value
that must agree (a queue name, a port, a probe path, a Secret's mount) lives in two or three files
that are edited by different hands.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("rabbitmq", "sqs")
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"

#: Kinds Kubernetes itself defines: validated against its OpenAPI schemas (kubernetes-validate).
CORE_KINDS = {"ServiceAccount", "ConfigMap", "Service", "Deployment", "PodDisruptionBudget", "NetworkPolicy",
              "CronJob", "Ingress"}
#: Custom resources (Prometheus Operator, KEDA): no schema ships offline, so the tests check their fields.
CRD_KINDS = {"PodMonitor", "PrometheusRule", "ScaledObject", "TriggerAuthentication"}

Doc = dict[str, Any]


def kustomize_command() -> list[str]:
    """``kubectl kustomize`` (or a standalone ``kustomize build``); skip when neither is installed."""
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    pytest.skip("neither kubectl nor kustomize is installed: the overlays are rendered with "
                "`kubectl kustomize deploy/k8s/overlays/NAME`; install kubectl to run these checks")


def render(overlay: str) -> list[Doc]:
    """The overlay's objects as ``kubectl kustomize`` renders them (fails with kustomize's message)."""
    out = subprocess.run([*kustomize_command(), str(K8S / "overlays" / overlay)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, f"kustomize failed on overlay {overlay}:\n{out.stderr}"
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def worker_deployment(docs: list[Doc]) -> Doc:
    return one(docs, "Deployment", "segment-export")


def worker_container(docs: list[Doc]) -> Doc:
    containers = worker_deployment(docs)["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "worker")


def arg_value(args: list[str], flag: str) -> str | None:
    """The value after ``flag`` in a container's args (``--flag value`` or ``--flag=value``)."""
    for i, a in enumerate(args):
        if a == flag:
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def config_toml(docs: list[Doc]) -> tuple[Doc, str, str]:
    """(the ConfigMap the worker mounts, the key its --config names, that key's text)."""
    container = worker_container(docs)
    path = arg_value(container["args"], "--config")
    assert path, f"the worker's args name no --config: {container['args']}"
    pod = worker_deployment(docs)["spec"]["template"]["spec"]
    mount = next((m for m in container["volumeMounts"] if path.startswith(m["mountPath"].rstrip("/") + "/")), None)
    assert mount, f"--config {path} is under no volumeMount of the worker"
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert "configMap" in volume, f"--config {path} is mounted from {volume}, not from a ConfigMap"
    cm = one(docs, "ConfigMap", volume["configMap"]["name"])
    key = path[len(mount["mountPath"].rstrip("/")) + 1:]
    assert key in cm["data"], f"ConfigMap {cm['metadata']['name']} has no key {key!r} (keys: {list(cm['data'])})"
    return cm, key, cm["data"][key]


def port_number(container: Doc, port: int | str) -> int:
    """A probe's or Service's port, by number or by the container port's name."""
    if isinstance(port, int):
        return port
    named = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    assert port in named, f"no container port named {port!r} (ports: {named})"
    return named[port]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    joined: list[str] = []
    buf = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        joined.append(buf + stripped)
        buf = ""
    out = []
    for line in joined:
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def load_toml(text: str) -> Doc:
    return tomllib.loads(text)
