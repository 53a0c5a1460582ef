"""The one exception the snapshot readers raise.

Why one type: the engine turns any unreadable snapshot into ``export.failed`` with the message as
the reason, so every failure (missing object, bad gzip, a broken connection mid-stream) must arrive as
the same type with a message that names the snapshot, the problem and the fix.
"""

from __future__ import annotations

UNREADABLE = "snapshot_unreadable"
INCOMPLETE = "snapshot_incomplete"


class SnapshotError(Exception):
    """The snapshot cannot be read; the message says what is wrong and how to fix it.

    ``transient``: the storage could not be reached or the read was cut off (worth retrying the run
    later), as opposed to a snapshot that is missing, forbidden or malformed (retrying cannot help).
    ``code``: ``export.failed``'s error code: ``snapshot_incomplete`` where the snapshot's own marker
    or manifest says it is not whole yet (no ``_SUCCESS`` where one is required, fewer records than a
    manifest lists: publish again once the job has finished), else ``snapshot_unreadable``.
    """

    def __init__(self, message: str, *, transient: bool = False, code: str = UNREADABLE) -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code
