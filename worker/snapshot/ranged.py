"""A seekable, read-only file over one S3 object, read by ranged GETs: what a Parquet reader needs from S3.

Why: a Parquet file's footer (its schema and where each column chunk lies) is at its end, and the reader
then jumps to the column chunks of the mapped columns only. boto3's StreamingBody reads front to back and
cannot seek, and spooling the whole object to memory or disk would cost its whole size. Each read here is
a ``Range`` GET of the version that was listed (``IfMatch`` on its ETag), so a replaced object fails the
read instead of mixing two files. Only the last block read is kept: what the Parquet reader asked for
(at most its 1 MiB buffer, or one column chunk's length), or 64 KiB where it asked for less, so the footer's
small reads cost one GET without reading far into the columns that are not mapped.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from worker.snapshot.errors import SnapshotError

BLOCK_SIZE = 64 << 10


class RangedObject(io.RawIOBase):
    """Seekable reads of ``bucket/key`` (``size`` bytes, ETag ``etag``) by ranged GETs, one block cached."""

    def __init__(self, client: Any, bucket: str, key: str, etag: str, size: int,
                 explain: Callable[[Exception], SnapshotError], block_size: int = BLOCK_SIZE) -> None:
        super().__init__()
        self._client, self._bucket, self._key, self._etag = client, bucket, key, etag
        self._size, self._explain, self._block_size = size, explain, block_size
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
        """One ranged GET from the position: what is wanted, at least a block (reads ahead small reads)."""
        from botocore.exceptions import BotoCoreError, ClientError
        from urllib3.exceptions import HTTPError

        start = self._pos
        end = min(self._size, start + max(want, self._block_size)) - 1
        try:
            body = self._client.get_object(Bucket=self._bucket, Key=self._key, IfMatch=self._etag,
                                           Range=f"bytes={start}-{end}")["Body"]
            data = body.read()
        except (ClientError, BotoCoreError) as exc:
            raise self._explain(exc) from exc
        except (HTTPError, OSError) as exc:
            raise SnapshotError(f"error reading snapshot s3://{self._bucket}/{self._key}: {exc} (the read was "
                                "interrupted; retry the run)", transient=True) from exc
        if len(data) != end - start + 1:
            raise SnapshotError(f"error reading snapshot s3://{self._bucket}/{self._key}: a ranged read returned "
                                f"{len(data)} bytes where {end - start + 1} were asked (retry the run)", transient=True)
        self._block_start, self._block = start, data
