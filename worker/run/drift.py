"""The drift check: after each commit, does ActiveCampaign's list hold as many subscribers as the export thinks?

Why: the engine sends only what changed since its synced state, so it trusts its memory. When the list
changes under it (a marketer deletes contacts, an admin cleans the list, people unsubscribe), nothing
in the diff notices, and the missing contacts never come back until someone runs ``--full``. One
request a run (``GET contacts?listid=L&status=1&limit=1``: the list's subscribed count in
``meta.total``) shows it:

- where the export owns the list (``owns_list``: nobody else subscribes people to it) the count must
  equal the contacts the synced state holds subscribed; the difference either way is drift;
- otherwise others may add subscribers, so only a count *smaller* than the export's is drift (a lower
  bound: what others added can hide some of it).

The difference goes to the completion event (``drift``), a gauge per export and a log line; the alert
``SegmentExportListDrift`` fires on it. ``segment-export verify`` then says who, and ``--repair`` fixes it.
A failed check never fails the run: it is logged and the event has no ``drift``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from worker.activecampaign.client import ActiveCampaignClient
from worker.activecampaign.errors import ActiveCampaignError
from worker.contacts.synced import SyncedState
from worker.settings import Export
from worker.state import StateError, StateStore

log = logging.getLogger("segment_export.drift")


@dataclass(frozen=True)
class Drift:
    """The synced state's subscribed count against ActiveCampaign's, for one list."""

    expected: int  # contacts the synced state holds subscribed to the list
    actual: int  # ActiveCampaign's subscribed count
    owned: bool

    @property
    def missing(self) -> int:
        """Subscribed in the export's memory, not in ActiveCampaign (deleted, unsubscribed by someone)."""
        return max(0, self.expected - self.actual)

    @property
    def unexpected(self) -> int:
        """On an owned list, subscribers the export did not subscribe (0 where the list is shared)."""
        return max(0, self.actual - self.expected) if self.owned else 0

    @property
    def difference(self) -> int:
        return self.missing + self.unexpected

    def as_event(self) -> dict[str, Any]:
        """The completion event's optional ``drift`` object."""
        return {"list_subscribed": self.actual, "synced_subscribed": self.expected, "missing": self.missing,
                "unexpected": self.unexpected, "owns_list": self.owned}


def synced_subscribed(store: StateStore, synced_key: str) -> int:
    """How many contacts the committed synced state holds subscribed (read from its manifest)."""
    data = store.get(synced_key)
    if not data:
        return 0
    state = SyncedState.decode(data)
    return state.manifest.subscribed if state.manifest is not None else state.subscribed()


async def check_drift(client: ActiveCampaignClient, store: StateStore, synced_key: str,
                      export: Export) -> Drift | None:
    """Compare the committed state with the list (one "other" request); None when either could not be read."""
    try:
        expected = await asyncio.to_thread(synced_subscribed, store, synced_key)
        async with client:
            actual = await client.list_subscribed_count(export.list_id)
    except (ActiveCampaignError, StateError) as exc:
        log.warning("drift check skipped: %s", exc, extra={"export": export.name})
        return None
    drift = Drift(expected, actual, export.owns_list)
    extra = {"export": export.name, "list_id": export.list_id, "drift": drift.as_event()}
    if drift.difference:
        log.warning("list drift: ActiveCampaign's list %d holds %d subscribed contacts, the synced state %d "
                    "(%d missing, %d unexpected); run `segment-export verify --export %s` to see who",
                    export.list_id, actual, expected, drift.missing, drift.unexpected, export.name, extra=extra)
    else:
        log.info("list in step: %d subscribed contacts", actual, extra=extra)
    return drift
