"""Managed tags: remove the tags this export added that no longer apply, after the batches, before the commit.

Why a step of the run: bulk import only adds tags, so a leaver would keep ``segment:vip`` (and the
automations built on it) forever. The plan says which contacts lose which tags (``worker.contacts.plan``,
recorded by ``worker.contacts.tagsets``); this step removes them once every batch is final, so a contact
whose update or unsubscription AC failed keeps its tags (and its old entry: the next run tries again).
Tags others added are never touched: only names the synced state remembers this export sending.

The request sequence, cheapest first (measured against the simulator; README "Managed tags"):

1. the contact's id: read from a scan of the list (``GET contacts?listid=&orders[id]=ASC&id_greater=``,
   100 a request) when that takes fewer requests than looking each contact up, else ``GET
   contacts?email=`` per contact (and for any the scan did not find);
2. ``GET contacts/{id}/contactTags``: the contact's tag links (link id, tag id);
3. ``DELETE contactTags/{link}`` for each link whose tag is one to remove (tag ids by name, once a run:
   ``GET tags?filters[search][eq]=``) and that this export made: the link's ``cdate`` is no earlier than
   when this export first sent the tag to the contact (the synced state keeps that time per tag,
   ``worker.contacts.tagsets``). A tag the contact already had (a form, an automation) is never removed.

So 2 requests a contact plus one per removed tag, with the ids from a scan, or 3 plus one a tag. Every
request is an "other" one: the non-bulk share of the account's budget, never ahead of a bulk POST.

Crash safety: the contacts are processed in a fixed order (the plan's), in chunks of ``CHUNK``; each
chunk has a record (``runs/<id>/tags/NNNNN``: how many of its contacts are done, how many tag links went,
and the links of the contact in hand, written before they are deleted). A resumed run skips what its
records say is done; the contact cut off half-way is read again (step 2) and only what is still there
is removed, so no tag is removed twice and none is skipped, and the links it had decided on count as
removed by this run whoever got there. The records hold counts and link ids, never emails.

Tags are the account's, not the list's. Two exports of one account never add the same static tag while
one of them removes it (``Config.check`` refuses it), but a ``tag_field`` value may be another export's
tag too: a tag another export's committed synced state still gives the contact (its stored tags, or its
static ``tags`` for a contact it holds) is not removed (``given_by_others``); ``config check`` notes where
this can happen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from worker.activecampaign.client import ActiveCampaignClient
from worker.activecampaign.importer import BatchOutcome
from worker.activecampaign.leavers import GONE
from worker.contacts.plan import REMOVE
from worker.contacts.synced import SyncedState
from worker.contacts.tagsets import decode_tags, tag_name, tag_since
from worker.privacy.masking import mask_email
from worker.run.runbook import Runbook, RunKeys
from worker.run.types import RunInterrupted
from worker.settings import Config, Export
from worker.state import StateStore
from worker.syncstate import index as codes
from worker.syncstate.keys import email_keys

log = logging.getLogger("segment_export.tags")

#: Contacts per progress record.
CHUNK = 50
#: Contacts worked on at once (the limiter paces the requests; this only overlaps their latency).
CONCURRENCY = 4
PAGE = 100


#: How far ActiveCampaign's clock may run behind ours: a link made up to this long before the part that
#: sent its tag was planned still counts as this export's (README "Managed tags").
CLOCK_SLACK_SECONDS = 60


@dataclass(frozen=True)
class Untag:
    """One contact that loses tags this export added: the synced state's items (``worker.contacts.tagsets``:
    a name, or ``[name, since]`` with when this export first sent it)."""

    email: str
    names: list[Any]


@dataclass
class Untagged:
    """What the step did: contacts it went through and tag links it removed (the completion event's ``tags``)."""

    contacts: int = 0
    removed: int = 0

    def as_counts(self) -> dict[str, int]:
        return {"tags_contacts": self.contacts, "tags_removed": self.removed}


def account_peers(config: Config, export: Export) -> list[Export]:
    """The other exports whose connection reaches the same ActiveCampaign account (tags are account-wide)."""
    url = config.connections[export.connection].account
    return [e for e in config.exports.values()
            if e.name != export.name and config.connections[e.connection].account == url]


class GivenByOthers:
    """What the other exports of the same account give a contact, from their committed synced states (read
    once, when first asked; blocking). Calling it with an email gives the tag names (casefolded) those
    exports give it: the tags each stored as sent to it, and the static ``tags`` of an export whose state
    holds it subscribed or skipped (an export with ``remove_tags`` off stores no tags): never removed here.
    ``first_sent`` gives when they first sent each of their stored tags: a tag another export sent first
    was not the contact's before this export sent it (``worker.run.commit`` stamps it with that time).

    Two exports of an account never add the same static tag while one removes it (``Config.check``): what
    is left to meet here is a ``tag_field`` value another export also gives. A run of that export still in
    progress is not seen (README "Managed tags")."""

    def __init__(self, store: StateStore, others: list[Export]) -> None:
        self.store, self.others = store, others
        self._states: list[tuple[Export, SyncedState]] | None = None

    def _holding(self, email: str) -> list[tuple[Export, SyncedState, int]]:
        """The other exports whose state holds ``email`` subscribed or skipped, with its position."""
        if self._states is None:
            self._states = [(e, SyncedState.load(self.store, RunKeys(e.name, "-").synced)[0]) for e in self.others
                            if e.tags or e.tag_field]
        found = []
        hi, lo = email_keys([email])
        for export, synced in self._states:
            index = synced.index
            if not len(index):
                continue
            pos = int(index.lookup(hi, lo, [email])[0])
            if pos >= 0 and int(index.flag[pos]) != codes.UNSUBSCRIBED:
                found.append((export, synced, pos))
        return found

    def __call__(self, email: str) -> set[str]:
        names: set[str] = set()
        for export, synced, pos in self._holding(email):
            names.update(t.casefold() for t in export.tags or ())
            if synced.index.tag is not None:
                names.update(t.casefold() for t in decode_tags(synced.index.tags_at(pos)))
        return names

    def first_sent(self, email: str) -> dict[str, int]:
        """Casefolded tag name -> the earliest time another export's state says it first sent it to ``email``
        (0: not known, a state written before the time was kept)."""
        first: dict[str, int] = {}
        for _, synced, pos in self._holding(email):
            if synced.index.tag is None:
                continue
            stored = synced.index.tags_at(pos)
            for item in orjson.loads(stored) if stored else ():
                name = tag_name(item).casefold()
                first[name] = min(first.get(name, tag_since(item)), tag_since(item))
        return first


def given_by_others(store: StateStore, others: list[Export]) -> GivenByOthers:
    """The account's other exports' tags (``GivenByOthers``)."""
    return GivenByOthers(store, others)


def held_tags(synced: SyncedState, emails: Iterable[str]) -> list[Untag]:
    """The tags ``synced`` holds for each of ``emails`` (those holding any), as removal items: for the tools
    that take people out of the state (``forget``, ``verify --repair``), which remove this export's tags
    first, since afterwards nothing would remember them as this export's."""
    ordered = sorted(set(emails))
    return [Untag(email, orjson.loads(stored)) for email, stored in zip(ordered, synced.tags_of(ordered), strict=True)
            if stored]


def planned(book: Runbook, outcome_of: Callable[[int], BatchOutcome | None]) -> list[Untag]:
    """The contacts that lose tags, in plan order: those whose request AC carried out (a leaver AC had
    already unsubscribed too), and dropped leavers; never one whose contact AC failed or skipped, nor one
    of a batch whose outcome is unknown (``outcome_of`` None: it is kept doubtful, ``worker.run.commit``)."""
    items: list[Untag] = []
    for header in book.part_headers():
        for b in header["batches"]:
            untag = b.get("untag")
            if not untag:
                continue
            outcome = outcome_of(b["n"])
            if outcome is None:
                continue
            for i, names in untag:
                email, op = b["emails"][i], b["ops"][i]
                if email in outcome.failed or (email in outcome.skipped and op != REMOVE) \
                        or outcome.skipped.get(email) == GONE:  # deleted in AC: no tags left to remove
                    continue
                items.append(Untag(email, list(names)))
        items.extend(Untag(email, list(names)) for email, names in header.get("untag_dropped", ()))
    return items


class TagRemover:
    """Removes the planned tags of one run, resumably (see the module docstring)."""

    def __init__(self, client: ActiveCampaignClient, book: Runbook, list_id: int, *,
                 stop: asyncio.Event | None = None, concurrency: int = CONCURRENCY,
                 others: GivenByOthers | None = None) -> None:
        """``others``: the tags other exports of the account give a contact (never removed here)."""
        self.client = client
        self.others = others
        self.book = book
        self.list_id = list_id
        self.stop = stop
        self.concurrency = concurrency
        self._tag_ids: dict[str, asyncio.Future[str | None]] = {}

    async def run(self, items: list[Untag]) -> Untagged:
        chunks = [items[k:k + CHUNK] for k in range(0, len(items), CHUNK)]
        progress, pendings = await asyncio.to_thread(self._progress, len(chunks))
        result = Untagged(contacts=len(items), removed=sum(removed for _, removed in progress))
        todo = [(n, chunk) for n, chunk in enumerate(chunks) if progress[n][0] < len(chunk)]
        if not todo:
            return result
        wanted = {item.email for n, chunk in todo for item in chunk[progress[n][0]:]}
        ids = await self._contact_ids(wanted)
        slots = asyncio.Semaphore(self.concurrency)

        async def one_chunk(n: int, chunk: list[Untag]) -> None:
            async with slots:
                done, removed = progress[n]
                pending = pendings.get(n, set())
                for item in chunk[done:]:
                    if self.stop is not None and self.stop.is_set():
                        raise RunInterrupted

                    async def deciding(links: list[str], n: int = n, done: int = done, removed: int = removed) -> None:
                        await asyncio.to_thread(self._record, n, done, removed, links)

                    gone = await self._untag(item, ids.get(item.email), pending, deciding)
                    pending = set()
                    done, removed = done + 1, removed + gone
                    result.removed += gone
                    await asyncio.to_thread(self._record, n, done, removed)

        try:
            async with asyncio.TaskGroup() as group:
                for n, chunk in todo:
                    group.create_task(one_chunk(n, chunk))
        except BaseExceptionGroup as group_error:  # one error is what the run reports
            raise group_error.exceptions[0] from None
        log.info("tags removed: %d from %d contacts", result.removed, result.contacts)
        return result

    async def remove_now(self, items: list[Untag]) -> int:
        """Remove ``items``' tags without progress records (``forget``, which is repeated when interrupted:
        each contact's links are read again, so a link already removed is not asked for twice); returns
        how many links went."""
        async def unrecorded(_: list[str]) -> None:
            return None

        removed = 0
        for item in items:
            removed += await self._untag(item, None, set(), unrecorded)
        return removed

    # ------------------------------------------------------------------------------------ records
    def _key(self, n: int) -> str:
        return f"{self.book.keys.tags}{n:05d}"

    def _progress(self, chunks: int) -> tuple[list[tuple[int, int]], dict[int, set[str]]]:
        """(contacts done, tags removed) per chunk, and the links the contact in hand was losing, from the
        records an earlier attempt left."""
        got = [(0, 0)] * chunks
        pending: dict[int, set[str]] = {}
        for key in self.book.store.list(self.book.keys.tags):
            n = int(key.rsplit("/", 1)[1])
            data = self.book.store.get(key)
            if data is not None and n < chunks:
                rec = orjson.loads(data)
                got[n] = (int(rec["done"]), int(rec["removed"]))
                if rec.get("pending"):
                    pending[n] = {str(link) for link in rec["pending"]}
        return got, pending

    def _record(self, n: int, done: int, removed: int, pending: list[str] | None = None) -> None:
        rec: dict[str, object] = {"done": done, "removed": removed}
        if pending:
            rec["pending"] = pending
        self.book.store.put(self._key(n), orjson.dumps(rec))

    # ------------------------------------------------------------------------------------ requests
    async def _contact_ids(self, emails: set[str]) -> dict[str, int]:
        """Ids of ``emails`` from a scan of the list, when the scan costs fewer requests than a lookup
        each (decided on its first page, whose ``meta.total`` says how many pages there are); else {}."""
        if len(emails) < 2:
            return {}
        page, total = await self.client.list_page(self.list_id, None, 0, kind="other")
        if -(-total // PAGE) >= len(emails):
            return {}
        found: dict[str, int] = {}
        while page:
            found.update((email, contact_id) for contact_id, email in page if email in emails)
            if len(page) < PAGE or len(page) >= total:  # meta.total counts this page and the ones after
                break
            page, total = await self.client.list_page(self.list_id, None, page[-1][0], kind="other")
        return found

    async def _untag(self, item: Untag, contact_id: int | None, decided: set[str],
                     deciding: Callable[[list[str]], Awaitable[None]]) -> int:
        """Remove one contact's tags; returns how many links went. ``decided``: the links an earlier attempt
        had decided to remove for this contact (gone now or not, they count); ``deciding(links)`` records
        the links before any is deleted."""
        names = item.names
        if self.others is not None:
            theirs = await asyncio.to_thread(self.others, item.email)
            names = [n for n in names if tag_name(n).casefold() not in theirs]
            if not names and not decided:
                return 0  # every tag is still another export's to give: nothing to ask or remove
        if contact_id is None:
            contact = await self.client.find_contact(item.email)
            if contact is None:
                return 0  # deleted in ActiveCampaign since: nothing left to remove
            contact_id = int(contact["id"])
        links = await self.client.contact_tags(contact_id) or []
        doomed: list[str] = []
        for stored in names:
            tag_id = await self._tag_id(tag_name(stored))
            doomed += [str(link["id"]) for link in links
                       if tag_id is not None and str(link.get("tag")) == tag_id and link.get("id")
                       and self._ours(link, tag_since(stored), item.email)]
        if doomed:
            await deciding(sorted(decided | set(doomed)))
        for link_id in doomed:
            await self.client.remove_contact_tag(link_id)
        removed = len(decided | set(doomed))
        if removed:
            log.debug("tags removed from %s: %d", mask_email(item.email), removed)
        return removed

    def _ours(self, link: dict[str, Any], since: int, email: str) -> bool:
        """Whether this export made the tag link: AC made it (``cdate``) no earlier than the part that first
        sent the tag was planned. An older link was there before (a form, an automation, a person): the
        contact keeps it. ``since`` 0 (a state written before the time was kept): this export's, as then.
        A link whose ``cdate`` cannot be read is kept (and logged): a tag left is repaired by a rerun with
        the time, a tag taken wrongly is not."""
        if not since:
            return True
        try:
            made = datetime.fromisoformat(str(link["cdate"])).timestamp()
        except (KeyError, TypeError, ValueError):
            log.warning("tag link %s of %s has no readable cdate (%r): kept", link.get("id"), mask_email(email),
                        link.get("cdate"))
            return False
        if made >= since - CLOCK_SLACK_SECONDS:
            return True
        log.debug("tag link %s of %s is older than this export's first send: kept", link.get("id"),
                  mask_email(email))
        return False

    async def _tag_id(self, name: str) -> str | None:
        """The tag's id, looked up once a run (concurrent askers share the one request)."""
        key = name.strip().casefold()
        pending = self._tag_ids.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self.client.tag_id(name))
            self._tag_ids[key] = pending
        return await asyncio.shield(pending)
