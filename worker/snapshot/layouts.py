"""What a snapshot URI names, as the jobs that write segments lay them out: the parts to read, in order.

- a file, or a folder of part files (``local_parts``, ``s3_parts``); names starting with ``_`` or ``.``
  (``_SUCCESS``, ``_temporary/``, ``_started_*``, ``.crc`` files) are never data;
- a job's ``_SUCCESS`` marker (Spark, Hadoop, Glue write it when the job commits): the folder holding it;
- a manifest (a name ending in ``manifest``, as Redshift ``UNLOAD ... MANIFEST`` writes ``<prefix>manifest``):
  exactly the files it lists, with the record counts it states (``manifest``);
- a CDM ``model.json`` (Customer Insights): one entity's partitions, columns from its attributes (``cdm``).

``require_marker`` (an export's setting): the snapshot must show it is whole before anything is read, so
a folder still being written is refused (``snapshot_incomplete``) instead of synced half-way. A folder
shows it with ``_SUCCESS``; a manifest or model.json, written by their jobs after the data, are their
own marker; a lone file cannot show it and is refused.

Where a document lists files, each listed location is decided by ``worker.locations.locate`` like any
other, may be listed only once (however it is spelled: ``a.csv``, ``./a.csv``, ``%61.csv``, its full URI) and
must (1) lie in the folder holding the document or below it (so a manifest in one bucket or
folder cannot make the worker read another, nor a remote document a local file; an Azure https URL is read
only from a document on Azure, so a CDM folder copied elsewhere lists its partitions relatively), (2) have no segment
below that folder starting with ``_`` or ``.``, and (3) pass the worker's ``snapshot_prefixes``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from worker.locations import Location, LocationError, Prefixes, locate
from worker.privacy.masking import mask_credentials
from worker.snapshot.az_parts import (
    az_object_exists,
    az_object_part,
    azure_https_as_uri,
    list_az_parts,
    read_az_document,
)
from worker.snapshot.cdm import parse_model
from worker.snapshot.errors import INCOMPLETE, SnapshotError
from worker.snapshot.local_parts import list_local_parts, local_file_exists, local_file_part, read_local_document
from worker.snapshot.manifest import parse_manifest
from worker.snapshot.parts import Part
from worker.snapshot.s3_parts import list_s3_parts, read_s3_document, s3_object_exists, s3_object_part

MARKER = "_SUCCESS"
MODEL = "model.json"
#: A manifest or model.json bigger than this is not one (Redshift lists one entry per slice and file).
DOCUMENT_LIMIT = 16 << 20


@dataclass(frozen=True)
class SnapshotRules:
    """What an export asks of its snapshots beyond the URI (its settings, the worker's prefixes)."""

    require_marker: bool = False
    """Refuse a snapshot that does not show it is whole (no ``_SUCCESS`` in its folder)."""
    entity: str | None = None
    """A CDM model.json's entity to read, when it holds several."""
    prefixes: tuple[str, ...] | None = None
    """Where listed files may be (the worker's ``snapshot_prefixes``); None: anywhere beside the document."""
    exact: bool = False
    """The URI was admitted (canonical, checked against the prefixes): read exactly that place and fail if
    a link on its path now leads elsewhere (no gap between the service's check and the run's read)."""


@dataclass(frozen=True)
class Listing:
    parts: list[Part]
    records: int | None = None
    """The rows the whole snapshot holds according to its manifest; checked once it is read."""
    source: str = ""
    """The document describing the parts (a manifest, a model.json), which states ``records``."""
    document: str = ""
    """The SHA-256 of the manifest's or model.json's bytes (empty for a folder or file): what the parts are read
    as (columns, delimiter, counts) comes from it, so it is part of the snapshot's identity."""


def list_snapshot(location: Location, rules: SnapshotRules) -> Listing:
    """The parts ``location`` names, in reading order; SnapshotError if there are none or they are not whole."""
    name = "" if location.folder or not location.segments else location.segments[-1]
    if name == MARKER:
        folder = _parent(location)
        if not _exists(location):
            raise SnapshotError(f"snapshot {location.uri}: the marker does not exist, so the job writing "
                                f"{folder.uri} has not committed; nothing was read (publish the event once it has)",
                                code=INCOMPLETE)
        return Listing(_list(folder))
    if name == MODEL:
        return _cdm(location, rules)
    if name.lower().endswith("manifest"):
        return _manifest(location, rules)
    if not rules.require_marker:
        return Listing(_list(location))
    # The marker first, then the listing: a job writes _SUCCESS after its last part, so a listing taken after
    # the marker was seen is whole; a listing taken before it may miss the parts written in between.
    marked = _exists(location.as_folder().child(MARKER))
    parts = _list(location)
    _check_marker(location, parts, marked)
    return Listing(parts)


def _check_marker(location: Location, parts: list[Part], marked: bool) -> None:
    """Refuse a lone file, or a folder that had no marker when it was looked for (before it was listed)."""
    if len(parts) == 1 and parts[0].source == location.uri:
        raise SnapshotError(f"snapshot {location.uri} is one file, which cannot show it is whole, and the export "
                            f"sets require_marker: name the job's folder (with its {MARKER}), a manifest or a "
                            "model.json, or unset require_marker", code=INCOMPLETE)
    folder = location.as_folder()
    if not marked:
        raise SnapshotError(f"snapshot {folder.uri} has no {MARKER} marker and the export sets require_marker: the "
                            "job writing it has not finished (or failed); nothing was read or sent. Publish the "
                            "event once the job has committed", code=INCOMPLETE)


def _manifest(location: Location, rules: SnapshotRules) -> Listing:
    data = _document(location)
    manifest = parse_manifest(data, location.uri)
    parts: list[Part] = []
    seen: dict[Location, str] = {}
    for i, entry in enumerate(manifest.entries):
        where = _listed(location, entry.url, "manifest", rules)
        _once(seen, where, f"entries[{i}] {entry.url[:300]!r}", location, "manifest")
        try:
            part = _one(where)
        except SnapshotError as exc:
            if exc.transient or _exists(where):
                raise
            if not entry.mandatory:
                continue
            raise SnapshotError(f"snapshot {where.uri}, listed in manifest {location.uri}, does not exist: the "
                                "snapshot is not whole (still being copied, or removed); nothing was sent",
                                code=INCOMPLETE) from None
        if entry.length is not None and part.size != entry.length:
            raise SnapshotError(f"snapshot {part.source} is {part.size:,} bytes where manifest {location.uri} says "
                                f"{entry.length:,}: the file is not the one the job wrote (a partial copy or a "
                                "re-upload); nothing was sent. Re-run the unload", code=INCOMPLETE)
        parts.append(dataclasses.replace(part, records=entry.records))
    if not parts:
        raise SnapshotError(f"manifest {location.uri}: none of its optional files exists")
    return Listing(parts, manifest.records, location.uri, hashlib.sha256(data).hexdigest())


def _cdm(location: Location, rules: SnapshotRules) -> Listing:
    data = _document(location)
    entity = parse_model(data, location.uri, rules.entity)
    parts = []
    seen: dict[Location, str] = {}
    for i, partition in enumerate(entity.partitions):
        where = _listed(location, partition.location, "model.json", rules)
        _once(seen, where, f"partitions[{i}] {partition.location[:300]!r}", location, "model.json")
        part = _one(where)
        parts.append(dataclasses.replace(part, format="csv", delimiter=partition.delimiter,
                                         header=None if partition.header_row else entity.columns))
    return Listing(parts, source=location.uri, document=hashlib.sha256(data).hexdigest())


def _listed(document: Location, text: str, what: str, rules: SnapshotRules) -> Location:
    """The location a document lists, if it may be read (see the module docstring); else SnapshotError."""
    folder = _parent(document)
    shown = repr(mask_credentials(text)[:300])
    text = azure_https_as_uri(text, document) or text
    if document.kind != "az" and text.lower().startswith(("https://", "http://")):
        raise SnapshotError(f"{what} {document.uri} lists {shown}, a web URL: such URLs (the ones Customer "
                            f"Insights writes) are read only from a {what} on Azure (az:// or abfss://); in a copy "
                            f"elsewhere write each location relative to the {what} (the path below its folder)")
    if "://" not in text:
        if text.startswith("/"):
            raise SnapshotError(f"{what} {document.uri} lists {shown}, an absolute path: write it relative to the "
                                f"{what} or as a full URI")
        text = folder.uri + text  # a relative reference, percent-encoded as a URI is
    try:
        where = locate(text)
    except LocationError as exc:
        raise SnapshotError(f"{what} {document.uri} lists {shown}: {exc}") from None
    if not where.is_under(folder) or where.folder:
        raise SnapshotError(f"{what} {document.uri} lists {shown}, which is not a file in {folder.uri} or below it; "
                            f"a {what} may only list files beside it or below it")
    hidden = [s for s in where.segments[len(folder.segments):] if s.startswith(("_", "."))]
    if hidden:
        raise SnapshotError(f"{what} {document.uri} lists {shown}, inside {hidden[0]!r}: names starting with '_' or "
                            "'.' are a job's temporary or marker files, never data")
    if rules.prefixes is not None:
        try:
            Prefixes.parse(rules.prefixes).admit(where.uri)
        except LocationError as exc:
            raise SnapshotError(f"{what} {document.uri} lists {shown}: {exc}") from None
    return where


def _once(seen: dict[Location, str], where: Location, entry: str, document: Location, what: str) -> None:
    """Refuse a file the document lists a second time, however it is spelled (compared as decided by locate).

    Why: read twice, a file's rows count twice, so a duplicate entry can stand in for a missing file and
    still match the stated record counts; the missing file's people would then look like leavers.
    """
    first = seen.setdefault(where, entry)
    if first != entry:
        raise SnapshotError(f"{what} {document.uri} lists the same file {where.uri} twice, as {first} and {entry}: "
                            f"a {what} lists each file once; fix the {what} (or re-run the job that wrote it); "
                            "nothing was read")


def _parent(location: Location) -> Location:
    return Location(location.kind, location.root, location.segments[:-1], True)


def _list(location: Location) -> list[Part]:
    return {"file": list_local_parts, "s3": list_s3_parts, "az": list_az_parts}[location.kind](location)


def _one(location: Location) -> Part:
    return {"file": local_file_part, "s3": s3_object_part, "az": az_object_part}[location.kind](location)


def _exists(location: Location) -> bool:
    return {"file": local_file_exists, "s3": s3_object_exists, "az": az_object_exists}[location.kind](location)


def _document(location: Location) -> bytes:
    read = {"file": read_local_document, "s3": read_s3_document, "az": read_az_document}[location.kind]
    return read(location, DOCUMENT_LIMIT)
