"""A seekable, read-only file over one stored object, read by ranged GETs: what a Parquet reader needs
from S3 or Azure.

Why: a Parquet file's footer (its schema and where each column chunk lies) is at its end, and the reader
then jumps to the column chunks of the mapped columns only. boto3's StreamingBody reads front to back and
cannot seek, and spooling the whole object to memory or disk would cost its whole size. Each read here is
a ranged GET of the version that was listed (S3 ``IfMatch``, Azure ``If-Match`` on its ETag), so a replaced
object fails the read instead of mixing two files. Only the last block read is kept: what the Parquet reader asked for
(at most its 1 MiB buffer, or one column chunk's length), or 64 KiB where it asked for less, so the footer's
small reads cost one GET without reading far into the columns that are not mapped.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from worker.snapshot.errors import SnapshotError

BLOCK_SIZE = 64 << 10


Fetch = Callable[[int, int], bytes]
"""Bytes ``start`` to ``end`` (inclusive) of the listed version; raises SnapshotError."""


class RangedObject(io.RawIOBase):
    """Seekable reads of one stored object (``size`` bytes) through ``fetch``, the last block kept."""

    def __init__(self, fetch: Fetch, size: int, source: str, block_size: int = BLOCK_SIZE) -> None:
        super().__init__()
        self._fetch_range, self._size, self._source, self._block_size = fetch, size, source, block_size
        self._pos = 0
        self._block_start = 0
        self._block = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._size - self._pos)
        if want <= 0:
            return 0
        offset = self._pos - self._block_start
        if not 0 <= offset < len(self._block) or offset + want > len(self._block):
            self._fetch(want)
            offset = 0
        view[:want] = self._block[offset:offset + want]
        self._pos += want
        return want

    def _fetch(self, want: int) -> None:
        """One ranged read from the position: what is wanted, at least a block (reads ahead small reads)."""
        start = self._pos
        end = min(self._size, start + max(want, self._block_size)) - 1
        data = self._fetch_range(start, end)
        if len(data) != end - start + 1:
            raise SnapshotError(f"error reading snapshot {self._source}: a ranged read returned {len(data)} bytes "
                                f"where {end - start + 1} were asked (retry the run)", transient=True)
        self._block_start, self._block = start, data


def s3_range(client: Any, bucket: str, key: str, etag: str, source: str,
             explain: Callable[[Exception], SnapshotError]) -> Fetch:
    """``Fetch`` by S3 ``Range`` GETs of the listed version (``IfMatch``)."""

    def fetch(start: int, end: int) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError
        from urllib3.exceptions import HTTPError

        try:
            body = client.get_object(Bucket=bucket, Key=key, IfMatch=etag, Range=f"bytes={start}-{end}")["Body"]
            data: bytes = body.read()
        except (ClientError, BotoCoreError) as exc:
            raise explain(exc) from exc
        except (HTTPError, OSError) as exc:
            raise SnapshotError(f"error reading snapshot {source}: {exc} (the read was interrupted; retry the run)",
                                transient=True) from exc
        return data

    return fetch
