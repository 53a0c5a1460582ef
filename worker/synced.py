"""The export's committed state: which emails were synced, with the fingerprint of what was sent.

Stored as sorted text records, one per line: ``email<TAB>fingerprint<TAB>flag``. Why not JSON: a dict
of a million entries costs seconds to parse and hundreds of MB; these lines load with one split per
line and diff cleanly. ``flag`` is empty for a synced contact and ``s`` for one ActiveCampaign skipped
because the contact unsubscribed from the list (kept so later runs count it ``skipped`` instead of
resending it every time). The first line is a header naming the format and the run that committed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HEADER = "#segment-export synced v1"
SKIPPED = "s"


class SyncedFormatError(ValueError):
    pass


@dataclass
class SyncedState:
    """email -> (fingerprint, flag); plus the run id that committed it."""

    entries: dict[str, tuple[str, str]] = field(default_factory=dict)
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
        entries: dict[str, tuple[str, str]] = {}
        for line in body.splitlines():
            email, fp, flag = line.split("\t")
            entries[email] = (fp, flag)
        return cls(entries, run_id)

    def encode(self) -> bytes:
        lines = [f"{HEADER} run={self.run_id}"]
        lines.extend(f"{email}\t{fp}\t{flag}" for email, (fp, flag) in sorted(self.entries.items()))
        lines.append("")
        return "\n".join(lines).encode()
