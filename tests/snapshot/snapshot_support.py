"""Helpers shared by the snapshot tests (plain functions; the fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tests.privileges import as_nobody as as_nobody  # re-exported for the tests
from worker.snapshot import Page, read_pages


def jsonl_bytes(profiles: list[Any]) -> bytes:
    """One JSON value per line, newline-terminated."""
    return b"".join(orjson.dumps(p) + b"\n" for p in profiles)


def read_all(uri: str, **kwargs: Any) -> list[Page]:
    """Every page of a snapshot, as a list."""
    return list(read_pages(uri, **kwargs))


def rows_of(pages: list[Page]) -> list[tuple[str, int, dict]]:
    """(source, line, profile) of every row in order, to compare across page boundaries."""
    return [(page.source, line, row) for page in pages for line, row in page.rows]


class Store:
    """One place snapshots are written to (a folder on disk, or a bucket on moto's S3), for tests run on both."""

    def __init__(self, kind: str, base: Path | None = None, s3: Any = None, bucket: str = "") -> None:
        self.kind, self._base, self._s3, self.bucket = kind, base, s3, bucket

    def put(self, key: str, data: bytes) -> str:
        """Write ``data`` at ``key`` (a '/'-separated path); returns its URI."""
        if self.kind == "file":
            assert self._base is not None
            path = self._base / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        else:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return self.uri(key)

    def delete(self, key: str) -> None:
        if self.kind == "file":
            assert self._base is not None
            (self._base / key).unlink()
        else:
            self._s3.delete_object(Bucket=self.bucket, Key=key)

    def uri(self, key: str) -> str:
        if self.kind == "file":
            assert self._base is not None
            return (self._base / key).as_uri() + ("/" if key.endswith("/") else "")
        return f"s3://{self.bucket}/{key}"
