"""List the parts of a snapshot on the local filesystem: one file, or the part files of a folder.

The location comes from ``worker.locations.locate``, so its path is already resolved: no symbolic link
is left in it. Inside a folder a part may be a link only to a file inside that same folder (a link
elsewhere would let whoever can write the folder make the worker read anything); every part is opened
with O_NOFOLLOW, so a link put in place after the listing is refused rather than followed.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from collections.abc import Callable

from worker.locations import Location, locate
from worker.snapshot.errors import SnapshotError
from worker.snapshot.formats import PART_SUFFIXES, is_part_name
from worker.snapshot.parts import Part

_READ_ERRORS: tuple[type[BaseException], ...] = (OSError,)


def _os_error(exc: OSError, uri: str, doing: str) -> SnapshotError:
    """A SnapshotError for an OSError, with the fix that fits the errno."""
    if isinstance(exc, FileNotFoundError):
        return SnapshotError(f"snapshot not found: {uri} (check the path, and that the export finished)")
    if isinstance(exc, PermissionError):
        return SnapshotError(
            f"permission denied {doing} snapshot {uri} (make it readable by the user the worker runs as)"
        )
    if exc.errno == errno.ELOOP:
        return SnapshotError(f"snapshot {uri} became a symbolic link after it was listed; it is not followed "
                             "(write the snapshot's files in place, not as links)")
    return SnapshotError(f"cannot {doing.removesuffix('ing')} snapshot {uri}: {exc.strerror or exc}")


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)


def _opener(path: str, uri: str) -> Callable[[], io.RawIOBase]:
    """A function that opens ``path`` unbuffered (the parsers read 1 MiB chunks themselves), no link followed.

    The file is seekable, so the same opener serves the streaming parsers and Parquet's footer-first reads.
    """

    def open_file() -> io.RawIOBase:
        try:
            return open(path, "rb", buffering=0, opener=_no_follow)  # closed by the reader when the part is done
        except OSError as exc:
            raise _os_error(exc, uri, "reading") from exc

    return open_file


def _part(location: Location, name: str, st: os.stat_result) -> Part:
    uri = location.uri
    opener = _opener(location.path, uri)
    return Part(name, uri, st.st_size, str(st.st_mtime_ns), opener, _READ_ERRORS, opener)


def list_local_parts(location: Location) -> list[Part]:
    """The file at ``location``, or the part files directly inside that folder, in name order."""
    uri, path = location.uri, location.path
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _os_error(exc, uri, "reading") from exc
    if not stat.S_ISDIR(st.st_mode):
        return [_part(location, location.segments[-1] if location.segments else "", st)]
    parts: list[Part] = []
    others: list[str] = []
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                part = _entry_part(location, entry) if is_part_name(entry.name) else None
                if part is not None:
                    parts.append(part)
                elif not entry.name.startswith((".", "_")):
                    others.append(entry.name)
    except OSError as exc:
        raise _os_error(exc, uri, "listing") from exc
    if not parts:
        raise SnapshotError(empty_folder_message(uri, others))
    parts.sort(key=lambda part: part.name)
    return parts


def _entry_part(folder: Location, entry: os.DirEntry[str]) -> Part | None:
    """The part an entry of the folder is (a regular file, or a link to one inside the folder), else None."""
    where = folder.child(entry.name)
    if entry.is_symlink():
        target = locate(where.uri)  # resolved like any location
        if not target.is_under(folder):
            raise SnapshotError(
                f"snapshot {folder.uri}: part {entry.name} is a symbolic link to {target.uri}, outside the "
                "snapshot's folder; links are only followed inside it (copy the file into the folder)")
        where = target
    st = os.stat(where.path, follow_symlinks=False)
    return _part(where, entry.name, st) if stat.S_ISREG(st.st_mode) else None


def empty_folder_message(uri: str, others: list[str]) -> str:
    """Why a folder or prefix yields nothing, naming a few of the entries that were skipped."""
    seen = f"; it holds {', '.join(sorted(others)[:5])}{', ...' if len(others) > 5 else ''}" if others else ""
    return (
        f"snapshot not found: {uri} has no part files{seen} "
        f"(parts must end in {', '.join(PART_SUFFIXES)}; hidden and _-prefixed names are skipped)"
    )


def local_file_part(location: Location) -> Part:
    """The regular file at ``location`` (a file a manifest or model.json lists); SnapshotError if it is none."""
    uri = location.uri
    try:
        st = os.lstat(location.path)  # the location is resolved: a link here appeared after it was located
    except OSError as exc:
        raise _os_error(exc, uri, "reading") from exc
    if not stat.S_ISREG(st.st_mode):
        raise SnapshotError(f"snapshot {uri} is not a file (a listed part must be one file)")
    return _part(location, location.segments[-1] if location.segments else "", st)


def local_file_exists(location: Location) -> bool:
    """A regular file is at ``location`` (a ``_SUCCESS`` marker; a link does not count)."""
    try:
        return stat.S_ISREG(os.lstat(location.path).st_mode)
    except OSError:
        return False


def read_local_document(location: Location, limit: int) -> bytes:
    """The bytes of a small file that describes a snapshot (a manifest, a model.json), at most ``limit``."""
    uri = location.uri
    try:
        with open(location.path, "rb", opener=_no_follow) as file:
            data = file.read(limit + 1)
    except OSError as exc:
        raise _os_error(exc, uri, "reading") from exc
    if len(data) > limit:
        raise SnapshotError(f"snapshot {uri} is over {limit >> 20} MiB, too big for a manifest or model.json")
    return data
