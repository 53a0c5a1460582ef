"""List the parts of a snapshot on the local filesystem: one file, or the part files of a folder.

The location comes from ``worker.locations.locate``, so its path is already resolved: no symbolic link
is left in it. Inside a folder a part may be a link only to a file inside that same folder (a link
elsewhere would let whoever can write the folder make the worker read anything).

Admitted at the listing, re-admitted at the open, by the same rules: only a regular file is a part (a
FIFO would block the worker forever, a device reads without end; a part-named entry that is not a
regular file is an error, never skipped quietly). A part is opened one path segment at a time from
``/`` with O_NOFOLLOW, so a link put in place of the file or of any folder above it after the listing
is refused rather than followed; the last segment is opened non-blocking (a FIFO swapped in cannot
hang the open), and the opened descriptor must be the very file that was listed (``fstat``: same
device and inode, still regular), so nothing can be swapped in between the check and the open.
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
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


def _os_error(exc: OSError, uri: str, doing: str) -> SnapshotError:
    """A SnapshotError for an OSError, with the fix that fits the errno."""
    if isinstance(exc, FileNotFoundError):
        return SnapshotError(f"snapshot not found: {uri} (check the path, and that the export finished)")
    if isinstance(exc, PermissionError):
        return SnapshotError(
            f"permission denied {doing} snapshot {uri} (make it readable by the user the worker runs as)"
        )
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return SnapshotError(f"snapshot {uri}: the file or a folder above it became a symbolic link after it was "
                             "listed (or is no folder); it is not followed (write the snapshot's files in place, "
                             "not as links)")
    return SnapshotError(f"cannot {doing.removesuffix('ing')} snapshot {uri}: {exc.strerror or exc}")


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _not_regular(uri: str, mode: int, when: str = "") -> SnapshotError:
    return SnapshotError(f"snapshot {uri} is {_kind(mode)}{when}, not a regular file; it is not read (a snapshot "
                         "part must be a regular file: write the export's files in place)")


def open_no_links(path: str, admitted: os.stat_result, uri: str) -> io.RawIOBase:
    """``path`` opened unbuffered with no link followed anywhere, if it is still the ``admitted`` file.

    Walks from ``/`` one segment at a time (O_NOFOLLOW on every folder), checks the last segment without
    following it before opening it (non-blocking, so a FIFO cannot hang the open), then checks the open
    descriptor: a regular file with the listed device and inode. Raises SnapshotError otherwise.
    """
    fd = -1
    try:
        parent, name = _parent(path, uri)
        try:
            before = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if stat.S_ISLNK(before.st_mode):
                raise OSError(errno.ELOOP, "a symbolic link")
            if not stat.S_ISREG(before.st_mode):
                raise _not_regular(uri, before.st_mode, " now")
            fd = os.open(name, _FILE_FLAGS, dir_fd=parent)
        finally:
            os.close(parent)
        now = os.fstat(fd)
        if not stat.S_ISREG(now.st_mode):
            raise _not_regular(uri, now.st_mode, " now")
        if (now.st_dev, now.st_ino) != (admitted.st_dev, admitted.st_ino):
            raise SnapshotError(f"snapshot {uri} was replaced by another file after it was listed; it is not read "
                                "(retry once the export has finished writing)")
        os.set_blocking(fd, True)
        stream = open(fd, "rb", buffering=0)  # noqa: SIM115 - closed by the reader when the part is done
        fd = -1
        return stream
    except OSError as exc:
        raise _os_error(exc, uri, "reading") from exc
    finally:
        if fd >= 0:
            os.close(fd)


def _parent(path: str, uri: str) -> tuple[int, str]:
    """A descriptor of the folder holding ``path``'s last segment, reached with no link followed; and that name."""
    *folders, name = [s for s in path.split("/") if s] or [""]
    if not name:
        raise SnapshotError(f"snapshot {uri} names the root folder; name the snapshot's file or folder")
    parent = os.open("/", _DIR_FLAGS)
    try:
        for folder in folders:
            inner = os.open(folder, _DIR_FLAGS, dir_fd=parent)
            os.close(parent)
            parent = inner
    except BaseException:
        os.close(parent)
        raise
    return parent, name


def _opener(path: str, admitted: os.stat_result, uri: str) -> Callable[[], io.RawIOBase]:
    """A function that opens ``path`` as :func:`open_no_links` does (the parsers read 1 MiB chunks themselves).

    The file is seekable, so the same opener serves the streaming parsers and Parquet's footer-first reads.
    """

    def open_file() -> io.RawIOBase:
        return open_no_links(path, admitted, uri)

    return open_file


def _part(location: Location, name: str, st: os.stat_result) -> Part:
    uri = location.uri
    opener = _opener(location.path, st, uri)
    return Part(name, uri, st.st_size, str(st.st_mtime_ns), opener, _READ_ERRORS, opener)


def list_local_parts(location: Location) -> list[Part]:
    """The file at ``location``, or the part files directly inside that folder, in name order."""
    uri, path = location.uri, location.path
    folder = -1
    try:
        parent, name = _parent(path, uri)  # no link followed on the way: the location was resolved already
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                try:
                    folder = os.open(name, _DIR_FLAGS, dir_fd=parent)
                except OSError as exc:
                    raise _os_error(exc, uri, "listing") from exc
        finally:
            os.close(parent)
    except OSError as exc:
        raise _os_error(exc, uri, "reading") from exc
    if folder < 0:
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(uri, st.st_mode)
        return [_part(location, name, st)]
    parts: list[Part] = []
    others: list[str] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if is_part_name(entry.name):
                    parts.append(_entry_part(location, entry))
                elif not entry.name.startswith((".", "_")):
                    others.append(entry.name)
    except OSError as exc:
        raise _os_error(exc, uri, "listing") from exc
    finally:
        os.close(folder)
    if not parts:
        raise SnapshotError(empty_folder_message(uri, others))
    parts.sort(key=lambda part: part.name)
    return parts


def _entry_part(folder: Location, entry: os.DirEntry[str]) -> Part:
    """The part an entry of the folder is: a regular file, or a link to one inside the folder; else an error.

    Why an error and not a skip: an entry named like a part is data the export meant to be read; a part
    that is a FIFO, a device or a folder left out quietly is a snapshot that lost rows.
    """
    where = folder.child(entry.name)
    if entry.is_symlink():
        target = locate(where.uri)  # resolved like any location
        if not target.is_under(folder):
            raise SnapshotError(
                f"snapshot {folder.uri}: part {entry.name} is a symbolic link to {target.uri}, outside the "
                "snapshot's folder; links are only followed inside it (copy the file into the folder)")
        st = os.stat(target.path, follow_symlinks=False)
        where = target
    else:
        st = entry.stat(follow_symlinks=False)  # relative to the folder's descriptor: no path walked again
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(where.uri, st.st_mode)
    return _part(where, entry.name, st)


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
        admitted = os.lstat(location.path)
    except OSError as exc:
        raise _os_error(exc, uri, "reading") from exc
    with open_no_links(location.path, admitted, uri) as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise SnapshotError(f"snapshot {uri} is over {limit >> 20} MiB, too big for a manifest or model.json")
    return data
