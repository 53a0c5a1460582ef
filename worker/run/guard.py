"""The removal guard: refuse a run that would unsubscribe a large share of the list.

Why: an empty or truncated snapshot (an upstream bug, a renamed email column, a half-written export)
looks exactly like "everyone left". Bulk import never re-subscribes someone who was unsubscribed, so
that damage could not be undone by the next correct refresh. The guard runs before any request; an
operator who knows the segment really shrank overrides it for one run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from worker.contacts.mapping import valid_email
from worker.contacts.synced import SyncedState
from worker.settings import Export
from worker.snapshot import Page
from worker.syncstate.index import SUBSCRIBED
from worker.syncstate.keys import email_keys

CODE = "removal_guard"


@dataclass(frozen=True)
class Removals:
    """What a plan would do to the list: unsubscriptions against the contacts synced as subscribed."""

    removals: int
    subscribed: int
    valid_profiles: int


def verdict(export: Export, r: Removals) -> str | None:
    """The refusal message when the guard trips, else None (``on_leave = "keep"`` never trips it)."""
    if export.on_leave != "unsubscribe" or r.subscribed == 0:
        return None
    fraction, max_removals = export.max_removal_fraction, export.max_removals
    fraction_limit = int(fraction * r.subscribed)
    limits = [f"max_removal_fraction = {fraction:g} ({fraction_limit:,} contacts)"]
    tripped = r.removals > fraction_limit
    if max_removals is not None:
        limits.append(f"max_removals = {max_removals:,}")
        tripped = tripped or r.removals > max_removals
    empty = r.valid_profiles == 0 and r.removals > 0
    if not (tripped or empty):
        return None
    share = r.removals / r.subscribed
    limit = " and ".join(limits)
    why = (f"the snapshot holds no valid profile while the list has synced members (limit: {limit})" if empty
           else f"that is more than {limit}")
    return (f"export {export.name}: this run would unsubscribe {r.removals:,} of the {r.subscribed:,} contacts "
            f"synced as subscribed ({share:.1%}); {why}. Nothing was sent. Check the segment's snapshot "
            f"(an empty or truncated export, a renamed email column); if the segment really shrank, run it once "
            f"with `segment-export sync --allow-mass-removal` or `segment-export request --allow-mass-removal`, "
            f"or raise exports.{export.name}.max_removal_fraction / max_removals")


def count_removals(export: Export, synced: SyncedState, pages: Iterable[Page]) -> Removals:
    """Read the snapshot's emails only and count the synced subscribed contacts missing from it.

    A pass of its own because planning and sending overlap (the first batch leaves after the first page)
    while leavers are only known at the end of the snapshot. Kept cheap: per row only the email is
    normalized and hashed; each page is looked up in the state's key columns at once, and only emails
    the state does not hold are checked against the email rule (held ones were valid when stored).
    """
    key = export.mapping["email"]
    index = synced.index
    met = np.zeros(len(index), dtype=np.bool_)
    valid = 0
    for page in pages:
        emails: list[str] = []
        add = emails.append
        for _, profile in page.rows:
            raw = profile.get(key)
            if raw.__class__ is str:
                email = raw.strip().lower()
                if email:
                    add(email)
        if not emails:
            continue
        found = index.lookup(*email_keys(emails), emails)
        held = found >= 0
        met[found[held]] = True
        valid += int(np.count_nonzero(held)) + sum(1 for i in np.flatnonzero(~held).tolist()
                                                   if valid_email(emails[i]))
    subscribed = synced.subscribed()
    present = int(np.count_nonzero(met & (index.flag == SUBSCRIBED)))
    return Removals(subscribed - present, subscribed, valid)
