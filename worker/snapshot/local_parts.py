"""List the parts of a snapshot on the local filesystem: one file, or the part files of a folder."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from worker.snapshot.errors import SnapshotError
from worker.snapshot.formats import PART_SUFFIXES, is_part_name
from worker.snapshot.parts import Part, ReadableStream

_READ_ERRORS: tuple[type[BaseException], ...] = (OSError,)


def _os_error(exc: OSError, uri: str, doing: str) -> SnapshotError:
    """A SnapshotError for an OSError, with the fix that fits the errno."""
    if isinstance(exc, FileNotFoundError):
        return SnapshotError(f"snapshot not found: {uri} (check the path, and that the export finished)")
    if isinstance(exc, PermissionError):
        return SnapshotError(
            f"permission denied {doing} snapshot {uri} (make it readable by the user the worker runs as)"
        )
    return SnapshotError(f"cannot {doing.removesuffix('ing')} snapshot {uri}: {exc.strerror or exc}")


def _opener(path: str, uri: str) -> Callable[[], ReadableStream]:
    """A function that opens ``path`` unbuffered: the parsers read 1 MiB chunks themselves."""

    def open_file() -> ReadableStream:
        try:
            return open(path, "rb", buffering=0)  # closed by the reader when the part is done
        except OSError as exc:
            raise _os_error(exc, uri, "reading") from exc

    return open_file


def _part(path: str, name: str, st: os.stat_result) -> Part:
    uri = Path(path).as_uri()
    return Part(name, uri, st.st_size, str(st.st_mtime_ns), _opener(path, uri), _READ_ERRORS)


def list_local_parts(path: str) -> list[Part]:
    """The file at ``path``, or the part files directly inside the folder at ``path`` in name order."""
    uri = Path(path).as_uri()
    try:
        st = os.stat(path)
    except OSError as exc:
        raise _os_error(exc, uri, "reading") from exc
    if not stat.S_ISDIR(st.st_mode):
        return [_part(path, os.path.basename(path), st)]
    parts: list[Part] = []
    others: list[str] = []
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if is_part_name(entry.name) and entry.is_file():
                    parts.append(_part(entry.path, entry.name, entry.stat()))
                elif not entry.name.startswith((".", "_")):
                    others.append(entry.name)
    except OSError as exc:
        raise _os_error(exc, uri, "listing") from exc
    if not parts:
        raise SnapshotError(empty_folder_message(uri, others))
    parts.sort(key=lambda part: part.name)
    return parts


def empty_folder_message(uri: str, others: list[str]) -> str:
    """Why a folder or prefix yields nothing, naming a few of the entries that were skipped."""
    seen = f"; it holds {', '.join(sorted(others)[:5])}{', ...' if len(others) > 5 else ''}" if others else ""
    return (
        f"snapshot not found: {uri} has no part files{seen} "
        f"(parts must end in {', '.join(PART_SUFFIXES)}; hidden and _-prefixed names are skipped)"
    )
