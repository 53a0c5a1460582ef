"""The export's committed state: which emails were synced, with the fingerprint of what was sent.

Stored as sorted text records, one per line: ``email<TAB>fingerprint<TAB>flag[<TAB>since]``. Why not
JSON: a dict of a million entries costs seconds to parse and hundreds of MB; these lines load with one
split per line and diff cleanly. The first line is a header naming the format and the run that
committed it. ``flag``:

- empty: synced and subscribed to the list by this export;
- ``s`` (SKIPPED): ActiveCampaign skipped it because the person unsubscribed from the list (or
  re-entry found their own unsubscription): counted ``skipped``, never resent, never re-subscribed;
- ``u`` (UNSUBSCRIBED): this export unsubscribed it because it left the segment, at unix time
  ``since``. Kept (instead of forgotten) so that when the person comes back the export knows the
  unsubscription was its own and may re-subscribe them (``readmit``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

HEADER = "#segment-export synced v1"
SKIPPED = "s"
UNSUBSCRIBED = "u"

#: email -> (fingerprint, flag, since); ``since`` is "" unless flag is UNSUBSCRIBED.
Entry = tuple[str, str, str]


class SyncedFormatError(ValueError):
    pass


@dataclass
class SyncedState:
    """email -> (fingerprint, flag, since); plus the run id that committed it."""

    entries: dict[str, Entry] = field(default_factory=dict)
    run_id: str = ""

    @classmethod
    def decode(cls, data: bytes | None) -> SyncedState:
        if not data:
            return cls()
        text = data.decode()
        head, _, body = text.partition("\n")
        if not head.startswith(HEADER):
            raise SyncedFormatError("synced state has an unknown format (expected a segment-export v1 header)")
        run_id = head[len(HEADER):].strip().removeprefix("run=")
        entries: dict[str, Entry] = {}
        for line in body.splitlines():
            cols = line.split("\t")
            entries[cols[0]] = (cols[1], cols[2], cols[3] if len(cols) > 3 else "")
        return cls(entries, run_id)

    def encode(self) -> bytes:
        lines = [f"{HEADER} run={self.run_id}"]
        lines.extend(f"{email}\t{fp}\t{flag}\t{since}" if since else f"{email}\t{fp}\t{flag}"
                     for email, (fp, flag, since) in sorted(self.entries.items()))
        lines.append("")
        return "\n".join(lines).encode()

    def subscribed(self) -> int:
        """Contacts this export holds subscribed to the list (the removal guard's base)."""
        return sum(1 for _, flag, _ in self.entries.values() if not flag)
