"""FileStore: the state store on a local folder (one host; several processes and threads).

Why each write goes through a temporary file: readers must never see half a value. Every value is
written to a hidden temporary file in the key's folder, fsynced, then renamed (put, compare-and-swap)
or hard-linked (put-if-absent: ``link`` fails if the name exists, atomically) into place, so a value
is either wholly there or not at all, even after a crash. Hidden names (starting with '.') hold those
temporaries and the lock files; keys may not use them.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from worker.state.errors import StateError
from worker.state.file_lock import StripedLocks
from worker.state.keys import check_key, check_prefix
from worker.state.store import StateStore
from worker.state.versions import content_version

_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS, errno.EXDEV}


class FileStore(StateStore):
    """Keys are files under ``root``; ``a/b/c`` is ``root/a/b/c``.

    One limit that S3 does not have: a key cannot also be a folder of other keys (``a/b`` and
    ``a/b/c`` cannot both exist); that raises StateError. The run layout never does this.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = os.path.abspath(root)
        self._locks = StripedLocks(os.path.join(self._root, ".locks"))

    @property
    def root(self) -> str:
        """The absolute folder that holds the keys."""
        return self._root

    def __repr__(self) -> str:
        return f"FileStore({self._root!r})"

    def _path(self, key: str) -> str:
        return os.path.join(self._root, *check_key(key).split("/"))

    def _error(self, action: str, key: str, exc: OSError) -> StateError:
        where = self.uri(key)
        if isinstance(exc, PermissionError):
            return StateError(
                f"permission denied: cannot {action} {where} "
                f"(make {self._root} readable and writable by the worker's user)"
            )
        if isinstance(exc, (IsADirectoryError, NotADirectoryError, FileExistsError)):
            return StateError(
                f"cannot {action} {where}: the key clashes with another key (a file store cannot hold both "
                "'a/b' and 'a/b/c'; choose keys that are never a folder of other keys)"
            )
        return StateError(f"cannot {action} {where}: {exc.strerror or exc}")

    def _write_temp(self, key: str, path: str, data: bytes) -> str:
        """A hidden, fsynced temporary file next to ``path`` holding ``data``; its path."""
        folder, name = os.path.split(path)
        temp = os.path.join(folder, f".{name[:200]}.{secrets.token_hex(6)}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            try:
                fd = os.open(temp, flags, 0o666)  # the process umask decides who may read state
            except FileNotFoundError:
                os.makedirs(folder, exist_ok=True)
                fd = os.open(temp, flags, 0o666)
        except OSError as exc:
            raise self._error("write", key, exc) from exc
        try:
            with memoryview(data) as view:
                written = 0
                while written < len(view):
                    written += os.write(fd, view[written:])
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            _remove(temp)
            raise self._error("write", key, exc) from exc
        os.close(fd)
        return temp

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            with open(path, "rb") as file:
                return file.read()
        except _MISSING:
            return None
        except OSError as exc:
            raise self._error("read", key, exc) from exc

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        data = self.get(key)
        return None if data is None else (data, content_version(data))

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        temp = self._write_temp(key, path, data)
        try:
            with self._locks.hold(key):  # so a compare-and-swap never overwrites this put unseen
                os.replace(temp, path)
        except OSError as exc:
            _remove(temp)
            raise self._error("write", key, exc) from exc
        _sync_folder(path)

    def _put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        temp = self._write_temp(key, path, data)
        try:
            with self._locks.hold(key):
                written = self._link(temp, path)
        except OSError as exc:
            raise self._error("write", key, exc) from exc
        finally:
            _remove(temp)
        if written:
            _sync_folder(path)
        return written

    def _link(self, temp: str, path: str) -> bool:
        """Give ``temp`` the name ``path`` unless it exists; called under the key's lock."""
        try:
            os.link(temp, path)
            return True
        except FileExistsError:
            if os.path.isdir(path):
                raise IsADirectoryError(errno.EISDIR, "is a folder of other keys", path) from None
            return False
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
        # No hard links on this filesystem: every writer of the key holds its lock, so check-then-rename
        # is still atomic among them.
        if os.path.lexists(path):
            return False
        os.replace(temp, path)
        return True

    def _replace_if_unchanged(self, key: str, data: bytes, version: str) -> bool:
        path = self._path(key)
        temp = self._write_temp(key, path, data)
        replaced = False
        try:
            with self._locks.hold(key):
                if self._current_version(path) != version:
                    return False
                os.replace(temp, path)
                replaced = True
        except OSError as exc:
            raise self._error("write", key, exc) from exc
        finally:
            if not replaced:
                _remove(temp)
        _sync_folder(path)
        return True

    def _current_version(self, path: str) -> str | None:
        try:
            with open(path, "rb") as file:
                return content_version(file.read())
        except _MISSING:
            return None

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            with self._locks.hold(key):
                os.unlink(path)
        except _MISSING:
            pass
        except OSError as exc:
            raise self._error("delete", key, exc) from exc

    def uri(self, key: str) -> str:
        return Path(self._path(key)).as_uri()

    def list(self, prefix: str) -> list[str]:
        return sorted(key for key, _ in self._walk(prefix))

    def list_modified(self, prefix: str) -> builtins.list[tuple[str, float]]:
        found: builtins.list[tuple[str, float]] = []
        for key, entry in self._walk(prefix):
            try:
                found.append((key, entry.stat(follow_symlinks=False).st_mtime))
            except _MISSING:
                continue  # removed since the folder was read: not there any more
            except OSError as exc:
                raise self._error("read", key, exc) from exc
        found.sort()
        return found

    def _walk(self, prefix: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
        """(key, directory entry) of every key starting with ``prefix``, in no particular order.

        Only the folders that can hold such keys are read, so listing one run's records does not
        walk the whole store.
        """
        check_prefix(prefix)
        folder_part = prefix.rpartition("/")[0]
        if folder_part:
            stack = [(os.path.join(self._root, *folder_part.split("/")), folder_part + "/")]
        else:
            stack = [(self._root, "")]
        while stack:
            folder, relative = stack.pop()
            try:
                entries = os.scandir(folder)
            except _MISSING:
                continue
            except OSError as exc:
                raise StateError(f"cannot list {Path(folder).as_uri()}: {exc.strerror or exc}") from exc
            with entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    key = relative + entry.name
                    if entry.is_dir(follow_symlinks=False):
                        sub = key + "/"
                        if sub.startswith(prefix) or prefix.startswith(sub):
                            stack.append((entry.path, sub))
                    elif key.startswith(prefix):
                        yield key, entry


def _remove(path: str) -> None:
    """Delete a temporary file that may already be gone (linked, renamed or never made)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _sync_folder(path: str) -> None:
    """fsync the folder holding ``path`` so the new name survives a power loss (best effort)."""
    try:
        fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse fsync on a folder
            os.fsync(fd)
    finally:
        os.close(fd)
