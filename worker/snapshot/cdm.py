"""Parse a CDM folder's ``model.json`` (as Dynamics 365 Customer Insights exports a segment) into one entity.

What is read: ``entities[]`` (by ``name`` when there are several: the export's ``snapshot_entity``), the
entity's ``attributes[].name`` as the column names, and its ``partitions[].location`` as the files, in the
order listed. A partition's ``fileFormatSettings`` say how its CSV is written: ``columnHeaders`` true
means a header row, absent or false means **none** (Customer Insights writes none, so the attributes are
the header); ``delimiter`` (default ``,``); ``encoding`` must be UTF-8; ``quoteStyle`` ``QuoteStyle.Csv``
(the default) is the only one read, since ``QuoteStyle.None`` files cannot hold a delimiter inside a value.
Which files a location may name is decided by ``worker.snapshot.layouts``, as for a manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from worker.snapshot.errors import SnapshotError


@dataclass(frozen=True, slots=True)
class Partition:
    location: str
    """As written: relative to the model.json's folder, or a full URI."""
    header_row: bool
    delimiter: str


@dataclass(frozen=True, slots=True)
class Entity:
    name: str
    columns: tuple[str, ...]
    partitions: tuple[Partition, ...]


def parse_model(data: bytes, source: str, wanted: str | None) -> Entity:
    """The entity to read (``wanted``, or the only one); SnapshotError naming what is missing or unreadable."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SnapshotError(f"model.json {source} is not JSON ({exc}); re-export the CDM folder") from None
    entities = doc.get("entities") if isinstance(doc, dict) else None
    if not isinstance(entities, list) or not all(isinstance(e, dict) for e in entities) or not entities:
        raise SnapshotError(f'model.json {source} has no "entities" (a CDM model.json lists its entities there)')
    names = [e.get("name") for e in entities]
    if wanted is None:
        if len(entities) > 1:
            raise SnapshotError(f"model.json {source} holds {len(entities)} entities ({_names(names)}); set the "
                                "export's snapshot_entity to the one to read")
        entity = entities[0]
    else:
        found = [e for e in entities if e.get("name") == wanted]
        if not found:
            raise SnapshotError(f"model.json {source} has no entity {wanted!r} (snapshot_entity); it holds "
                                f"{_names(names)}")
        entity = found[0]
    where = f"model.json {source}: entity {entity.get('name')!r}"
    attributes = entity.get("attributes")
    if not isinstance(attributes, list) or not attributes:
        raise SnapshotError(f'{where} has no "attributes" (the columns)')
    columns = tuple(_attribute(a, i, where) for i, a in enumerate(attributes))
    if len(set(columns)) != len(columns):
        raise SnapshotError(f"{where} names an attribute twice (rename one)")
    partitions = entity.get("partitions")
    if not isinstance(partitions, list) or not partitions:
        raise SnapshotError(f'{where} has no "partitions" (no data files: the export has not written any yet)')
    return Entity(str(entity.get("name")), columns,
                  tuple(_partition(p, i, where) for i, p in enumerate(partitions)))


def _names(names: list[Any]) -> str:
    return ", ".join(repr(n) for n in names[:10]) + (", ..." if len(names) > 10 else "")


def _attribute(value: Any, i: int, where: str) -> str:
    name = value.get("name") if isinstance(value, dict) else None
    if not isinstance(name, str) or not name:
        raise SnapshotError(f'{where}: attributes[{i}] has no "name"')
    return name


def _partition(value: Any, i: int, where: str) -> Partition:
    here = f"{where}: partitions[{i}]"
    location = value.get("location") if isinstance(value, dict) else None
    if not isinstance(location, str) or not location:
        raise SnapshotError(f'{here} has no "location"')
    settings = value.get("fileFormatSettings") or {}
    if not isinstance(settings, dict):
        raise SnapshotError(f'{here}: "fileFormatSettings" must be an object')
    kind = settings.get("$type", "CsvFormatSettings")
    if kind != "CsvFormatSettings":
        raise SnapshotError(f"{here} is {kind}; only CSV partitions (CsvFormatSettings) are read")
    encoding = str(settings.get("encoding", "UTF-8"))
    if encoding.replace("-", "").upper() != "UTF8":
        raise SnapshotError(f"{here} is {encoding}; export the CDM folder as UTF-8")
    quote = settings.get("quoteStyle", "QuoteStyle.Csv")
    if quote != "QuoteStyle.Csv":
        raise SnapshotError(f"{here} uses {quote}; only QuoteStyle.Csv is read (values may then hold the delimiter)")
    delimiter = settings.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\"\r\n":
        raise SnapshotError(f"{here}: delimiter {delimiter!r} is not one character other than a quote or line break")
    headers = settings.get("columnHeaders", False)
    if not isinstance(headers, bool):
        raise SnapshotError(f'{here}: "columnHeaders" must be true or false')
    return Partition(location, headers, delimiter)
