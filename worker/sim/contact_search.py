"""`GET /contacts`: AC's filters and orders over the store, fast on the paths a sync client uses.

A lookup by email, or a page of a list's members in id order, is answered from the indexes without
touching other contacts (the client runs these at benchmark rates). Anything else - date filters,
`email_like`, `id_less`, an order other than id - materialises the candidates, filters them and sorts
them: fine for the sandbox's readers, which page through accounts of test size.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from worker.sim.emails import normalize_email
from worker.sim.records import Contact
from worker.sim.sortedids import page
from worker.sim.store import Store

#: orders[...] keys the simulator implements; names compare case-insensitively, as AC's MySQL does.
ORDER_KEYS: dict[str, Callable[[Contact], Any]] = {
    "id": lambda c: c.id,
    "cdate": lambda c: c.cdate,
    "udate": lambda c: c.udate,
    "email": lambda c: c.email,
    "first_name": lambda c: c.first_name.casefold(),
    "last_name": lambda c: c.last_name.casefold(),
    "name": lambda c: f"{c.first_name} {c.last_name}".casefold(),
}


@dataclass(slots=True)
class ContactQuery:
    """The implemented parameters of one `GET /contacts`, already parsed."""

    limit: int = 20
    offset: int = 0
    email: str | None = None
    email_like: str | None = None
    list_id: int | None = None
    status: int | None = None  # None (or AC's -1): any status
    id_greater: int | None = None
    id_less: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    orders: list[tuple[str, bool]] = field(default_factory=list)  # (key, descending), in query order

    @property
    def indexed(self) -> bool:
        """True when the indexes alone answer it (no extra filter, ordered by id or not at all)."""
        extra = (self.email_like, self.id_less, self.created_after, self.created_before, self.updated_after,
                 self.updated_before)
        return all(v is None for v in extra) and all(key == "id" for key, _ in self.orders)


def search(store: Store, query: ContactQuery) -> tuple[list[Contact], int]:
    """One page of matching contacts and the total that match (before limit/offset, after id_greater)."""
    ids = _candidates(store, query)
    if query.indexed:
        descending = bool(query.orders) and query.orders[-1][1]
        chosen, total = page(ids, id_greater=query.id_greater, offset=query.offset, limit=query.limit,
                             descending=descending)
        return [store.contacts[i] for i in chosen], total
    start = bisect_right(ids, query.id_greater) if query.id_greater is not None else 0
    found = [c for c in (store.contacts[ids[i]] for i in range(start, len(ids))) if _keeps(query, c)]
    orders = list(query.orders)
    if not any(key == "id" for key, _ in orders):
        orders.append(("id", False))  # ties are broken by id, so pages never overlap
    for key, descending in reversed(orders):  # stable sorts, last key first: a lexicographic order
        found.sort(key=ORDER_KEYS[key], reverse=descending)
    return found[query.offset:query.offset + query.limit], len(found)


def _candidates(store: Store, query: ContactQuery) -> Sequence[int]:
    """Ascending ids matching email/listid/status, from the indexes where there is one."""
    list_id, status = query.list_id, query.status
    if query.email is not None:
        found = store.by_email.get(normalize_email(query.email))
        return [found.id] if found is not None and _on_list(found, list_id, status) else []
    if list_id is not None:
        members = store.members.get(list_id)
        if members is None or (status is not None and status not in members.by_status):
            return []
        return (members.any if status is None else members.by_status[status]).ids
    if status is not None:
        # Not indexed (the client always filters by list); a scan, in id order.
        return [c.id for c in store.contacts.values() if any(m.status == status for m in c.lists.values())]
    return store.live_ids()


def _on_list(contact: Contact, list_id: int | None, status: int | None) -> bool:
    if list_id is not None:
        record = contact.lists.get(list_id)
        return record is not None and (status is None or record.status == status)
    return status is None or any(m.status == status for m in contact.lists.values())


def _keeps(query: ContactQuery, contact: Contact) -> bool:
    """The filters beyond the indexes: `*_after` is inclusive, `*_before` exclusive (see the docstring)."""
    if query.id_less is not None and contact.id >= query.id_less:
        return False
    if query.email_like is not None and query.email_like.lower() not in contact.email:
        return False
    if query.created_after is not None and contact.cdate < query.created_after:
        return False
    if query.created_before is not None and contact.cdate >= query.created_before:
        return False
    if query.updated_after is not None and contact.udate < query.updated_after:
        return False
    return query.updated_before is None or contact.udate < query.updated_before
