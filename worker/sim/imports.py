"""Bulk import batches: acceptance, the status timeline, and applying contacts to the store.

A batch is due `processing_delay` seconds after it was accepted, but never before the batch accepted
before it (batches complete in acceptance order, so two imports touching one contact land in the order
they were sent). Until the processor applies it, its `/import/info` status follows a timeline derived
from that span: `false` for the first min(0.3 s, span/4), then "waiting", "claimed" (from 40 %), "active"
(from 50 %), and "completed" only once the contacts are really applied, so a client that sees
"completed" can read the results at once.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from worker.sim.records import SUBSCRIBED, UNSUBSCRIBED
from worker.sim.store import Store
from worker.sim.validation import ImportContact

RECENT_DAYS = 7


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


@dataclass(slots=True)
class Batch:
    """One accepted bulk import request and, once processed, its per-contact outcome."""

    id: str
    accepted_at: float
    due: float
    for_date: str
    count: int
    contacts: list[ImportContact] | None
    callback: dict[str, Any] | None = None
    doomed: bool = False  # chosen at acceptance by batch_failure_rate: ends "failed", nothing applied
    final: str | None = None  # "completed" or "failed"
    completed_date: str | None = None
    success: list[str] = field(default_factory=list)
    failure: list[str] = field(default_factory=list)
    reasons: list[dict[str, str]] = field(default_factory=list)

    def status(self, now: float) -> str | bool:
        """What `/import/info` reports at `now` (see the module docstring for the timeline)."""
        if self.final is not None:
            return self.final
        span = self.due - self.accepted_at
        elapsed = now - self.accepted_at
        if elapsed < min(0.3, span / 4):
            return False
        if elapsed < 0.4 * span:
            return "waiting"
        if elapsed < 0.5 * span:
            return "claimed"
        return "active"

    def info(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        done = self.final is not None
        return {"status": status, "success": list(self.success) if done else [],
                "failure": list(self.failure) if done else []}


class Imports:
    """Every batch of the account, the FIFO of batches waiting to be applied, and daily aggregates."""

    def __init__(self) -> None:
        self.batches: dict[str, Batch] = {}
        self.pending: deque[Batch] = deque()
        self._last_due = 0.0
        self._outstanding: dict[str, list[int]] = {}
        self._completed: dict[str, list[int]] = {}
        self.contacts_queued = 0
        self.contacts_created = 0
        self.contacts_failed = 0
        self.failed_batches = 0

    def accept(self, contacts: list[ImportContact], callback: dict[str, Any] | None, *, now: float,
               delay: float, doomed: bool) -> Batch:
        """Queue a validated request; returns the batch (its id goes back to the client)."""
        due = max(now + delay, self._last_due)
        self._last_due = due
        batch = Batch(id=str(uuid.uuid4()), accepted_at=now, due=due, for_date=_today(), count=len(contacts),
                      contacts=contacts, callback=callback, doomed=doomed)
        self.batches[batch.id] = batch
        self.pending.append(batch)
        agg = self._outstanding.setdefault(batch.for_date, [0, 0])
        agg[0] += 1
        agg[1] += batch.count
        self.contacts_queued += batch.count
        return batch

    def finish(self, batch: Batch, store: Store) -> None:
        """Apply a due batch to the store (or fail it) and move it to the completed aggregates."""
        contacts, batch.contacts = batch.contacts or [], None
        if batch.doomed:
            batch.final = "failed"
            self.failed_batches += 1
        else:
            stamp = store.now()
            for item in contacts:
                reason = apply_contact(store, item, batch, stamp)
                if reason is not None:
                    batch.failure.append(item.sent_email)
                    batch.reasons.append({"email": item.sent_email, "reason": reason})
            batch.final = "completed"
            self.contacts_created += len(batch.success)
            self.contacts_failed += len(batch.failure)
        batch.completed_date = _today()
        out = self._outstanding.get(batch.for_date)
        if out is not None:
            out[0] -= 1
            out[1] -= batch.count
            if out[0] <= 0:
                del self._outstanding[batch.for_date]
        done = self._completed.setdefault(batch.completed_date, [0, 0])
        done[0] += 1
        done[1] += batch.count

    def summary(self) -> dict[str, Any]:
        """`GET /import/bulk_import`: per-day outstanding and recently (7 days) completed; string counts."""
        cutoff = (datetime.now(UTC).date() - timedelta(days=RECENT_DAYS)).isoformat()

        def rows(agg: dict[str, list[int]], since: str | None) -> list[dict[str, str]]:
            return [{"forDate": day, "batches": str(b), "contacts": str(c)}
                    for day, (b, c) in sorted(agg.items()) if since is None or day > since]

        return {"outstanding": rows(self._outstanding, None),
                "recentlyCompleted": rows(self._completed, cutoff)}

    def stats(self) -> dict[str, int]:
        completed = sum(b for b, _ in self._completed.values())
        return {
            "accepted": len(self.batches),
            "outstanding": len(self.pending),
            "completed": completed - self.failed_batches,
            "failed": self.failed_batches,
            "contacts_queued": self.contacts_queued,
            "contacts_created": self.contacts_created,
            "contacts_failed": self.contacts_failed,
        }


def apply_contact(store: Store, item: ImportContact, batch: Batch, stamp: datetime) -> str | None:
    """Upsert one imported contact; returns why it failed or was skipped, or None when applied.

    Checks run before any change, so a skipped contact is left exactly as it was (in particular, a
    contact that unsubscribed from a list it would be subscribed to is not updated at all).
    """
    if item.email is None:
        return "no email"
    email = item.email
    if store.is_excluded(email):
        return "excluded"
    contact = store.by_email.get(email)
    if contact is not None and contact.bounced:
        return "bounced"
    if contact is None and store.at_contact_limit():
        return "contact limit reached"
    if contact is not None:
        for list_id in item.subscribe:
            record = contact.lists.get(list_id)
            if record is not None and record.status == UNSUBSCRIBED:
                return f"unsubscribed from list {list_id}"
    if contact is None:
        contact = store.create_contact(email, stamp)
        batch.success.append(str(contact.id))
    text = {key: value for key in ("first_name", "last_name", "phone", "customer_acct_name")
            if (value := getattr(item, key)) is not None}
    store.update_contact(contact, text, item.fields, stamp)
    for name in item.tags:
        tag = store.find_tag(name) or store.create_tag(name)
        store.tag_contact(contact, tag, stamp)
    for list_id in item.subscribe:
        store.set_list_status(contact, list_id, SUBSCRIBED, via_api=True, stamp=stamp)
    for list_id in item.unsubscribe:  # made through the API: no campaign, message, reason or automation
        store.set_list_status(contact, list_id, UNSUBSCRIBED, via_api=True, stamp=stamp)
    return None
