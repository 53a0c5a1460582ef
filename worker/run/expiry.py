"""Bounded state: entries kept only for re-entry expire ``readmit_days`` after this export unsubscribed them.

Why: a leaver's entry (flag ``u``, with the time this export unsubscribed it) is what lets re-entry tell
the export's own unsubscription from the person's (``worker.activecampaign.readmission``). Kept forever,
those entries make the synced state grow with every day's churn. After ``readmit_days`` the entry is
forgotten at the next commit; a person who comes back later is sent as a new contact, and since
ActiveCampaign's bulk import never re-subscribes someone unsubscribed from the list, they stay
unsubscribed (counted ``skipped``). Nobody is ever re-subscribed because of an expiry.

The commit adds the expiries before the run's own changes, so a contact this run re-admitted (or
unsubscribed again) keeps its new entry: for one email the last change wins.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from worker.contacts.synced import SyncedState
from worker.syncstate import index as codes

log = logging.getLogger("segment_export.expiry")

DAY = 86_400


def cutoff(readmit_days: float, now: float) -> int:
    """Entries unsubscribed by the export before this unix time have expired."""
    return int(now - readmit_days * DAY)


def expired_emails(synced: SyncedState, before: int) -> Iterator[str]:
    """The emails of entries this export unsubscribed before ``before`` (unix seconds), in key order."""
    index = synced.index
    positions = np.flatnonzero((index.flag == codes.UNSUBSCRIBED) & (index.since > 0) & (index.since < before))
    if len(positions):
        log.info("%d entries kept for re-entry have expired (readmit_days) and are forgotten", len(positions))
        for _, email in synced.source.emails_at(positions.astype(np.int64)):
            yield email
