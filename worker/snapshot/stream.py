"""Open a part as a stream of decompressed bytes that raises only SnapshotError.

Why a guard around every stream: a part can fail half-way (connection reset, truncated gzip) after
pages have already been handed to the engine; the engine must see one exception type whose message
names the part, never a raw ``EOFError`` or ``zlib.error``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import zlib
from collections.abc import Callable

from worker.snapshot.errors import SnapshotError
from worker.snapshot.formats import Compression
from worker.snapshot.parts import Part, ReadableStream

GZIP_MAGIC = b"\x1f\x8b"


class GuardedStream(io.RawIOBase):
    """A raw stream over ``inner`` that turns ``catch`` exceptions into SnapshotError.

    It is a RawIOBase so that io.BufferedReader / io.TextIOWrapper (CSV) can sit on top of it.
    ``also_close`` is a stream under ``inner`` that ``inner.close()`` leaves open (GzipFile does not
    close a ``fileobj`` it was given).
    """

    def __init__(
        self,
        inner: ReadableStream,
        catch: tuple[type[BaseException], ...],
        explain: Callable[[BaseException], SnapshotError],
        also_close: ReadableStream | None = None,
    ) -> None:
        super().__init__()
        self._inner = inner
        self._catch = catch
        self._explain = explain
        self._also_close = also_close
        self._head = b""

    def push_back(self, head: bytes) -> None:
        """Return ``head`` (bytes read to sniff the magic number) before the rest of the stream."""
        self._head = head + self._head

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        head = self._head
        if head:
            self._head = b""
            if 0 <= size <= len(head):
                self._head = head[size:]
                return head[:size]
            size = -1 if size < 0 else size - len(head)
        try:
            return head + self._inner.read(size) if head else self._inner.read(size)
        except SnapshotError:
            raise
        except self._catch as exc:
            raise self._explain(exc) from exc

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            # Closing a half-read HTTP body or file must never mask the error that stopped the read.
            with contextlib.suppress(Exception):
                self._inner.close()
            if self._also_close is not None:
                with contextlib.suppress(Exception):
                    self._also_close.close()
        super().close()


def _read_head(stream: GuardedStream) -> bytes:
    """The first two bytes (fewer only at end of data), for the gzip magic number."""
    head = b""
    while len(head) < 2:
        more = stream.read(2 - len(head))
        if not more:
            break
        head += more
    return head


def open_part(part: Part, compression: Compression) -> GuardedStream:
    """Open ``part`` and return a guarded stream of its decompressed bytes.

    The demanded compression is checked against the data's magic bytes, so a plain file named
    ``.gz`` (or a gzip file passed with compression='none') fails at once with a clear message
    instead of producing one parse error per line. A part of 0 bytes is refused: it is what an upload cut
    short at its start leaves, and read as "no rows" it would unsubscribe every member it held (a part
    with no rows is not 0 bytes: CSV keeps its header row, gzip its header and end marker).
    """
    source = part.source

    def transport_error(exc: BaseException) -> SnapshotError:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return SnapshotError(
            f"error reading snapshot {source}: {reason} (the read was interrupted; retry the run)", transient=True
        )

    raw = GuardedStream(part.opener(), part.read_errors, transport_error)
    try:
        head = _read_head(raw)
    except BaseException:
        raw.close()
        raise
    raw.push_back(head)
    if not head:
        raw.close()
        raise SnapshotError(
            f"snapshot part {source} is empty (0 bytes): a part cut short? An empty part in a snapshot is a part "
            "that lost its rows, so it is not read as 'no rows'; re-export the snapshot (a part with no rows "
            "still holds its header row, or is a gzip stream of nothing)"
        )
    is_gzip = head == GZIP_MAGIC
    if compression == "gzip" and not is_gzip:
        raw.close()
        raise SnapshotError(
            f"snapshot {source} is not gzip (it is named .gz or compression='gzip' was given, but the "
            "data has no gzip header; pass compression='none' or upload the compressed file)"
        )
    if compression == "none" and is_gzip:
        raw.close()
        raise SnapshotError(
            f"snapshot {source} is gzip-compressed but compression='none' was given "
            "(pass compression='gzip' or omit it)"
        )
    if not is_gzip:
        return raw

    def gzip_error(exc: BaseException) -> SnapshotError:
        if isinstance(exc, EOFError):
            return SnapshotError(
                f"snapshot {source} is truncated: the gzip stream ends before its end marker "
                "(the upload was probably cut short; re-export the snapshot)"
            )
        return SnapshotError(f"snapshot {source} is corrupt gzip: {exc} (re-export the snapshot)")

    return GuardedStream(
        gzip.GzipFile(fileobj=raw, mode="rb"), (EOFError, zlib.error, OSError), gzip_error, also_close=raw
    )
