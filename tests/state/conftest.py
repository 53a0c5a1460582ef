"""The state-store contract runs against both backends: a folder, and S3 through moto's server."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.state import StateStore, open_store


@pytest.fixture(params=["file", "s3", "az"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    """A fresh, empty store: FileStore under tmp_path, S3Store under a prefix of a fresh bucket, or AzureStore
    under a prefix of a fresh container on Azurite."""
    if request.param == "file":
        return open_store((tmp_path / "state").as_uri())
    if request.param == "az":
        return open_store(f"az://{request.getfixturevalue('az_container')}/state/v1")
    bucket = request.getfixturevalue("s3_bucket")
    return open_store(f"s3://{bucket}/state/v1")
