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

A tag set in these records is the JSON array of the names as sent ("" when there are none). The synced
state keeps per entry (``worker.syncstate.shard``) the same names, each with the time this export first
sent it to the contact: ``[[name, since], ...]`` (``stamp_tags``, at the commit). ``since`` is the
planned_at of the part that first sent it, so a tag link ActiveCampaign created before then was not this
export's doing (a form or an automation gave the contact that tag first) and is never removed
(``worker.run.tags``). A bare name (a state written before the time was kept) has since 0: this export's
whenever its link was made, as it was then treated. ``untag`` lists carry the stored items as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from worker.contacts.synced import tag_name, tag_since

if TYPE_CHECKING:
    from worker.contacts.plan import PlanPart


def encode_tags(tags: Sequence[str] | None) -> str:
    """The stored form of a contact's tags: a JSON array of the names, or "" for none."""
    return orjson.dumps(list(tags)).decode() if tags else ""


def decode_tags(stored: str) -> list[str]:
    """The names in a stored tag set (names as sent, or the synced state's ``[name, since]`` items)."""
    return [tag_name(t) for t in orjson.loads(stored)] if stored else []


def stamp_tags(held: str, sent: str, since: int, earlier: Mapping[str, int] | None = None) -> str:
    """The synced state's form of a contact's tags after ``sent`` (a stored tag set) went out in a part
    planned at ``since``: each name keeps the time ``held`` (the contact's stored tags) gives it, or the
    one ``sent`` gives it, or else ``since``, or the time in ``earlier`` (casefolded name -> when another
    export of the account first sent it; 0, not known, is ignored) when that is before. Names compare ignoring case, as
    ActiveCampaign's tags do."""
    if not sent:
        return ""
    first = {tag_name(t).casefold(): tag_since(t) for t in orjson.loads(held)} if held else {}
    items = []
    for t in orjson.loads(sent):
        name = tag_name(t)
        known = first.get(name.casefold())
        if known is None:
            known = tag_since(t) if isinstance(t, list) else since
            if earlier and earlier.get(name.casefold()):  # 0: the other export does not know when: no help
                known = min(known, earlier[name.casefold()])
        items.append([name, known])
    return orjson.dumps(items).decode()


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
