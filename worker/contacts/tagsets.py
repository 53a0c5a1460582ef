"""Managed tags in a run's records: the tags each planned contact is sent, and the tags it loses.

Why a module: the planner decides which tags a contact loses (``worker.contacts.plan``), a plan part
records it (``worker.run.runbook``), the tag-removal step reads it back (``worker.run.tags``) and the
commit stores the tags sent (``worker.run.commit``). One spelling of the record keeps them in step.

In a plan part's header (only when the export manages tags):

- ``tagsets``: the distinct tag sets sent in this part, each a JSON array of names ("" = none; always
  first);
- per batch ``tg``: each contact's set, as a position in ``tagsets``; ``untag``: ``[[i, [names]], ...]``
  the contacts of the batch (by position) that lose tags this export added, and which;
- ``untag_dropped``: ``[[email, [names]], ...]`` leavers forgotten without a request that lose tags.

A tag set is stored as the JSON array of the names as sent ("" when there are none), the same text
the synced state keeps per entry (``worker.syncstate.shard``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from worker.contacts.plan import PlanPart


def encode_tags(tags: Sequence[str] | None) -> str:
    """The stored form of a contact's tags: a JSON array of the names, or "" for none."""
    return orjson.dumps(list(tags)).decode() if tags else ""


def decode_tags(stored: str) -> list[str]:
    return [str(t) for t in orjson.loads(stored)] if stored else []


def header_fields(part: PlanPart, batches: list[dict[str, Any]]) -> dict[str, Any]:
    """Add ``tg`` and ``untag`` to each batch record (in ``part.batches`` order) and return the part's
    ``tagsets`` and ``untag_dropped``; nothing when the part's planner does not manage tags."""
    if not part.tagging:
        return {}
    numbers: dict[str, int] = {"": 0}
    seen: dict[int, tuple[Any, int]] = {}  # id(tags list) -> (the list, its number): lists are shared
    for batch, record in zip(part.batches, batches, strict=True):
        tg: list[int] = []
        for contact in batch.contacts:
            tags = contact.get("tags")
            if not tags:
                tg.append(0)
                continue
            hit = seen.get(id(tags))
            if hit is None or hit[0] is not tags:
                hit = (tags, numbers.setdefault(encode_tags(tags), len(numbers)))
                seen[id(tags)] = hit
            tg.append(hit[1])
        record["tg"] = tg
        record["untag"] = [[i, names] for i, names in sorted(batch.untag.items())]
    return {"tagsets": list(numbers), "untag_dropped": [[email, names] for email, names in part.untag_dropped]}
