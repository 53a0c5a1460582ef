"""Leavers that ActiveCampaign no longer has: left out of the unsubscribing bulk import.

Why: a leaver is unsubscribed with a bulk import (``unsubscribe: [{listid}]``), and bulk import creates
the contacts it does not find. A person deleted in ActiveCampaign (by a marketer, by an erasure) who
then leaves the segment would come back as a new, unsubscribed contact: billed, and holding the email
someone chose to delete. So before a batch with removals is sent, each leaver is looked up on the list
(``GET contacts?email=&listid=``: one "other" request, any status); one that is not there is left out
with the reason ``GONE`` and forgotten by the commit, counted apart from the removals
(``leavers_deleted`` in the completion event). Cost: one request per leaver on the non-bulk share of the
budget (about 3 a second at ActiveCampaign's), so 1,000 leavers add about 5 minutes to a run.
"""

from __future__ import annotations

import asyncio
from typing import Any

from worker.activecampaign.client import ActiveCampaignClient
from worker.activecampaign.importer import Batch, Prepare

#: The reason a leaver was left out of its batch (the commit forgets it and counts it apart).
GONE = "deleted_in_activecampaign"


def is_leaver(contact: dict[str, Any]) -> bool:
    """A contact object that only unsubscribes (``worker.contacts.mapping.Mapper.leaver``)."""
    return "unsubscribe" in contact and "subscribe" not in contact


def leaver_check(client: ActiveCampaignClient, list_id: int, *, concurrency: int = 4) -> Prepare:
    """The ``prepare`` step of a batch holding removals: the leavers that are no longer on the list (in any
    status: deleted in ActiveCampaign, or taken off the list) stay out of the bulk import."""
    slots = asyncio.Semaphore(concurrency)

    async def prepare(batch: Batch) -> dict[str, str]:
        gone: dict[str, str] = {}

        async def one(email: str) -> None:
            async with slots:
                if not await client.on_list(email, list_id):
                    gone[email] = GONE

        async with asyncio.TaskGroup() as group:
            for email, contact in zip(batch.emails, batch.contacts, strict=True):
                if is_leaver(contact):
                    group.create_task(one(email))
        return gone

    return prepare
