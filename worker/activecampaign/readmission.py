"""Re-entry: subscribing again a contact that this export unsubscribed, and nobody else.

A contact that left the segment was unsubscribed by the export (bulk import ``unsubscribe``). When it
comes back, bulk import skips it for good ("never re-subscribes someone unsubscribed"), so the list
would silently drift from the segment for everyone who churns in and out. ``POST /contactLists`` can
re-subscribe, but re-subscribing a person who unsubscribed *themselves* is a consent problem. So the
contact's list record decides: AC leaves ``campaign``, ``message``, ``unsubreason`` and
``unsubscribeAutomation`` empty when an API client unsubscribed it, and sets one of them when the
person did (a campaign link, a form, an automation). Only the first kind is re-subscribed.

Callers only ask about contacts the export's synced state records as unsubscribed *by this export*.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from worker.activecampaign.client import ActiveCampaignClient
from worker.activecampaign.importer import Batch, Prepare
from worker.events.instants import try_instant

#: The record fields AC sets when the person's own action unsubscribed them.
OWN_UNSUBSCRIBE_FIELDS = ("campaign", "message", "unsubreason", "unsubscribeAutomation")
UNSUBSCRIBED, BOUNCED = "2", "3"

Result = Literal["readmitted", "send", "kept_out"]


@dataclass(frozen=True)
class Readmission:
    """``readmitted``: re-subscribed now; ``send``: nothing blocks a bulk import (not on the list, or
    subscribed again already, or no such contact); ``kept_out``: stays unsubscribed, ``reason`` says why."""

    result: Result
    reason: str = ""


def _set(value: Any) -> bool:
    return value not in (None, "", "0", 0, False)


#: Seconds of clock difference allowed between AC's record time and ours.
CLOCK_SKEW = 60


async def readmit(client: ActiveCampaignClient, email: str, list_id: int, *,
                  unsubscribed_at: int | None = None) -> Readmission:
    """Decide and, when it is ours to undo, undo this export's unsubscription of ``email`` (<= 3 requests).

    ``unsubscribed_at`` (unix seconds) is when this export sent the unsubscription. A list record last
    changed before that was unsubscribed by somebody else (our request then changed nothing): kept out.
    """
    contact = await client.find_contact(email)
    if contact is None:
        return Readmission("send")  # deleted in AC since: bulk import creates and subscribes it
    record = next((r for r in await client.contact_lists(str(contact["id"]))
                   if str(r.get("list")) == str(list_id)), None)
    if record is None:
        return Readmission("send")
    status = str(record.get("status"))
    if status == BOUNCED:
        return Readmission("kept_out", "bounced")
    if status != UNSUBSCRIBED:
        return Readmission("send")
    own = [name for name in OWN_UNSUBSCRIBE_FIELDS if _set(record.get(name))]
    if own:
        return Readmission("kept_out", f"unsubscribed_themselves ({', '.join(own)} set on the list record)")
    changed = try_instant(record.get("udate"))
    if unsubscribed_at and changed is not None and changed.timestamp() < unsubscribed_at - CLOCK_SKEW:
        return Readmission("kept_out", "unsubscribed_before_this_export_did (another client unsubscribed it; "
                                       "not ours to undo)")
    done, why = await client.subscribe(str(contact["id"]), list_id, sourceid=4)
    if not done:
        return Readmission("kept_out", f"ActiveCampaign refused to re-subscribe it: {why}")
    return Readmission("readmitted")


def readmitter(client: ActiveCampaignClient, list_id: int, left_at: dict[str, int], *,
               on_decision: Callable[[str], None] | None = None, concurrency: int = 4) -> Prepare:
    """The ``prepare`` step of a batch of re-entries (run before its bulk POST): each contact is
    re-subscribed when it is ours to undo; returns the emails that stay out, with why.

    ``left_at``: email -> when this export unsubscribed it. ``on_decision("readmitted" | "kept_out")``
    per contact (metrics). At most ``concurrency`` contacts are looked up at once (up to three "other"
    requests each, within the account's budget like every request).
    """
    slots = asyncio.Semaphore(concurrency)

    async def prepare(batch: Batch) -> dict[str, str]:
        kept_out: dict[str, str] = {}

        async def one(email: str) -> None:
            async with slots:
                decision = await readmit(client, email, list_id, unsubscribed_at=left_at.get(email) or None)
            if decision.result == "kept_out":
                kept_out[email] = decision.reason
            if on_decision is not None:
                on_decision("kept_out" if decision.result == "kept_out" else "readmitted")

        async with asyncio.TaskGroup() as group:
            for email in batch.emails:
                group.create_task(one(email))
        return kept_out

    return prepare
