"""A CSV part must have the column the mapping reads the email from; if not, say what it has instead.

Why a check of its own: without the email column every row is "missing its email", counted invalid,
and the run looks like a segment that emptied (only the removal guard stops it, and only on a list that
already has members). The usual cause is the delimiter: a ``;``- or tab-separated export read as CSV
has one column whose name is the whole header line; the message says which delimiter would fit.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from worker.privacy.masking import EMAIL_RE, mask_text
from worker.snapshot.errors import SnapshotError
from worker.snapshot.page import Page

_OTHER_DELIMITERS = {";": "';'", "\t": "tab", "|": "'|'"}


def with_column(pages: Iterable[Page], column: str, setting: str) -> Iterator[Page]:
    """``pages``, failing at the first part whose header lacks ``column`` (``setting`` names the config key).

    JSON Lines pages have no header (an object may lack any field: that row alone is invalid).
    """
    checked = ""
    for page in pages:
        if page.columns is not None and page.source != checked:
            checked = page.source
            if column not in page.columns:
                raise SnapshotError(missing_column_message(page.source, page.columns, column, setting))
        yield page


def missing_column_message(source: str, columns: tuple[str, ...], column: str, setting: str) -> str:
    """Which columns the header has, and whether another delimiter or another spelling would fit.

    The message goes into ``export.failed``, so no header text that may be a person's data leaves as is:
    emails are masked, long names cut, and a header holding an email is named for what it likely is, a
    file without a header whose first row was taken for one.
    """
    shown = ", ".join(repr(_cut(mask_text(c))) for c in columns[:12]) + (", ..." if len(columns) > 12 else "")
    hint = ""
    line = ",".join(columns)
    for delimiter, name in _OTHER_DELIMITERS.items():
        split = [c.strip() for c in next(csv.reader([line], delimiter=delimiter), [])]
        if column in split:
            hint = (f"; split on {name} the header has it, so the file is {name}-delimited: export it "
                    "comma-separated")
            break
    else:
        alike = [c for c in columns if c.strip().lower() == column.lower()]
        if alike:
            hint = f"; {alike[0]!r} differs only in case: fix {setting} or the export"
    if not hint and any(EMAIL_RE.search(c) for c in columns):  # a member's row: none of it is shown
        return (f"snapshot {source} has no column {column!r} ({setting}); line 1, read as the header, holds "
                f"{len(columns)} value(s) and an email address, so it is a row: the file has no header line "
                "(export it with one)")
    return (f"snapshot {source} has no column {column!r} ({setting}); its header (line 1) has {len(columns)} "
            f"column(s): {shown}{hint}")


def _cut(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."
