"""Parse a manifest in the Redshift ``UNLOAD ... MANIFEST [VERBOSE]`` shape: the files that make a snapshot.

The shape::

    {"entries": [{"url": "s3://bucket/unload/vip_0000_part_00.parquet",
                  "meta": {"content_length": 1234, "record_count": 56}}, ...],
     "meta": {"content_length": ..., "record_count": ...}}

The ``meta`` parts are written only with ``VERBOSE``. Why the counts matter: Redshift writes the manifest
after the files, so the counts are the job's own statement of what it wrote; a file that is shorter than
its entry says (a partial copy, a re-upload cut short) fails the run with ``snapshot_incomplete`` before
anything is sent, where otherwise the missing people would look like leavers. ``mandatory: false`` (the
COPY manifest's flag) lets a listed file be absent. This module only reads the document; which files
the listed URLs may name, and that each names another file, is decided by ``worker.snapshot.layouts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from worker.snapshot.errors import SnapshotError


@dataclass(frozen=True, slots=True)
class Entry:
    """One listed file: its URL as written, and what the manifest says of it."""

    url: str
    records: int | None = None
    length: int | None = None
    mandatory: bool = True


@dataclass(frozen=True, slots=True)
class Manifest:
    entries: tuple[Entry, ...]
    records: int | None
    """The total ``meta.record_count`` (VERBOSE), if given."""


def parse_manifest(data: bytes, source: str) -> Manifest:
    """The manifest's entries in their order; SnapshotError naming the first thing that is not as expected."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SnapshotError(f"manifest {source} is not JSON ({exc}); a manifest is Redshift UNLOAD's "
                            '{"entries": [{"url": ...}, ...]}') from None
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise SnapshotError(f'manifest {source} has no "entries" list; a manifest is Redshift UNLOAD\'s '
                            '{"entries": [{"url": ...}, ...]}')
    entries: list[Entry] = []
    for i, item in enumerate(doc["entries"]):
        where = f"manifest {source}: entries[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("url"), str) or not item["url"]:
            raise SnapshotError(f'{where} has no "url" (each entry is {{"url": "s3://bucket/key", ...}})')
        url = item["url"]
        meta = _meta(item.get("meta"), where)
        mandatory = item.get("mandatory", True)
        if not isinstance(mandatory, bool):
            raise SnapshotError(f'{where}: "mandatory" must be true or false')
        entries.append(Entry(url, _count(meta, "record_count", where), _count(meta, "content_length", where),
                             mandatory))
    if not entries:
        raise SnapshotError(f"manifest {source} lists no files (an UNLOAD whose query found no rows); a "
                            "snapshot must hold at least one file")
    top = _meta(doc.get("meta"), f"manifest {source}")
    return Manifest(tuple(entries), _count(top, "record_count", f"manifest {source}"))


def _meta(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SnapshotError(f'{where}: "meta" must be an object')
    return value


def _count(meta: dict[str, Any], name: str, where: str) -> int | None:
    value = meta.get(name)
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise SnapshotError(f'{where}: meta.{name} must be a whole number >= 0, got {value!r}')
    return value
