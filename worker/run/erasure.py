"""Erasure requests (``segment-export forget``): remove people from everything the state store keeps.

Why: a person who asks to be forgotten must disappear from every copy we hold, and the state store
holds emails in several places: each export's synced state (the emails section of its shards), the
failure reports still kept (``failures.jsonl`` / ``.csv``), the records of runs that have not ended
(plan parts, batch records) and verify reports. ``forget`` goes through each export holding its lease
(no run of it is in progress meanwhile) and:

- commits a synced state without the person (a new generation, swapped in with compare-and-swap; the
  old generation's shards are deleted, and so are generations left by crashed commits that hold them);
- rewrites every kept report and run record without their lines or entries (a plan part's batch loses
  the contact, its fingerprint, operation and tags; a batch record the email and its outcome);
- then reads every object of the export back, shards decompressed, and counts any that still hold one
  of the emails (``residue``, which must be 0).

An export that removes its tags (managed tags) first removes the tags it gave the people in
ActiveCampaign, as a leaver loses them (a tag another export still gives stays; the next export in turn
removes it). It returns counts, never emails. With ``--delete-contact`` the contacts are then deleted in each
ActiveCampaign account the exports use (``GET contacts?email=``, ``DELETE contacts/{id}``). Erase the
person upstream too: while they are in a segment's snapshot, the next run sends them again.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from worker.activecampaign.client import ActiveCampaignClient
from worker.contacts.synced import SyncedState
from worker.run.commit import install
from worker.run.runbook import RunKeys, export_prefix
from worker.run.tags import Untag, held_tags
from worker.state import StateStore
from worker.syncstate.keys import email_keys
from worker.syncstate.merge import Changes, bits_for, shards_prefix
from worker.syncstate.shard import ShardFormatError, decode_emails, decode_tags, is_shard

log = logging.getLogger("segment_export.erasure")


@dataclass
class Erased:
    """What ``forget`` did, in counts (printed as JSON; never an email)."""

    emails: int = 0
    exports: int = 0
    synced_entries: int = 0  # entries removed from synced states
    report_lines: int = 0  # failure-report and verify-report lines or entries removed
    run_records: int = 0  # plan parts and batch records rewritten
    orphan_shards: int = 0  # shards of generations left by crashed commits, deleted
    residue: int = 0  # objects that still hold one of the emails afterwards (must be 0)
    contacts_deleted: int = 0
    contacts_not_found: int = 0
    list_unsubscribed: int = 0  # unsubscribed from an owned list (without --delete-contact)
    tags_removed: int = 0  # tag links an export had added, removed (managed tags, without --delete-contact)
    per_export: dict[str, int] = field(default_factory=dict)  # export -> synced entries removed

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def normalize(emails: Iterable[str]) -> set[str]:
    """Trimmed, lower-cased, blank lines dropped (how every email is stored)."""
    return {e.strip().lower() for e in emails if e.strip()}


#: Around a whole address: before it, no character an address's local part may hold (ActiveCampaign's rule
#: refuses ``"(),:;<>@[\]`` and whitespace there); after it, no character a domain may go on with (a label
#: character, or a dot followed by one). UTF-8 bytes of non-ASCII letters count as address characters.
_BEFORE = rb'(?<![^\s"(),:;<>\[\]\\])'
_AFTER = rb"(?![A-Za-z0-9_\-\x80-\xff]|\.[A-Za-z0-9_\-\x80-\xff])"


def matcher(emails: Iterable[str]) -> re.Pattern[bytes]:
    """A pattern that finds any of ``emails`` (lower-cased) as a whole address in lower-cased bytes: forgetting
    ``b@example.com`` never touches ``bob@example.com`` or ``b@example.com.au``."""
    alternatives = b"|".join(re.escape(e.encode()) for e in sorted(emails, key=len, reverse=True))
    return re.compile(_BEFORE + b"(?:" + alternatives + b")" + _AFTER)


def forget_in_export(store: StateStore, export: str, emails: set[str], erased: Erased) -> None:
    """Remove ``emails`` from one export's keys (the caller holds the export's lease); blocking.

    Finishes in one pass, whatever an earlier forget or run left when it died: a generation other than the
    current one that holds an email (a crashed commit's, or the old one of a commit that died before
    deleting it) is deleted once this forget has swapped the manifest itself (it does so when the synced
    state held nobody to forget). After that swap no other generation can ever become current: a commit
    still on its way swaps against a manifest version that no longer exists, and no run of the export can
    start one while the lease is held. Each step is idempotent, so a forget killed at any point is finished
    by running it again.
    """
    prefix = export_prefix(export)
    pattern = matcher(emails)
    orphans = _orphans(store, export, pattern)
    removed = _forget_synced(store, export, emails, fence=bool(orphans))
    erased.synced_entries += removed
    erased.per_export[export] = removed
    for key in orphans:
        store.delete(key)
    erased.orphan_shards += len(orphans)
    for key in store.list(prefix):
        if key.startswith(shards_prefix(prefix)) or key == f"{prefix}synced":
            continue
        data = store.get(key)
        if data is None:
            continue
        name = key.rsplit("/", 1)[1]
        if name in ("failures.jsonl", "report.json", "checkpoint") or name.endswith("failures.csv") \
                or _is_run_record(key):
            new, lines = _without(key, data, emails)
            if new is not None:
                store.put(key, new)
                if _is_run_record(key):
                    erased.run_records += 1
                erased.report_lines += lines
    erased.residue += sum(1 for key in store.list(prefix) if holds(store, key, pattern))
    erased.exports += 1


def holds(store: StateStore, key: str, emails: set[str] | re.Pattern[bytes]) -> bool:
    """Whether the object at ``key`` holds one of ``emails`` as a whole address (any case; shards
    decompressed)."""
    data = store.get(key)
    if data is None:
        return False
    return _mentions(readable(key, data), emails)


def readable(key: str, data: bytes) -> bytes:
    """An object's content as searchable bytes: a shard's emails and tags decompressed, else as stored."""
    if is_shard(data):
        try:
            return ("\n".join(decode_emails(data, key)) + "\n" + "\n".join(decode_tags(data, key) or [])).encode()
        except ShardFormatError:
            return data
    if data[:2] == b"\x78\x9c":  # zlib, just in case
        try:
            return zlib.decompress(data)
        except zlib.error:
            return data
    return data


# ------------------------------------------------------------------------------------ erasure mark
#: At the store's root: ``open <id>`` while a forget is under way (or died), ``done <id>`` once one finished.
#: Verify notes it when it starts and gives up (no report, no repair) when it changed or is open, so a
#: forget that ran meanwhile can never have its emails written back by a verify's report or repair.
ERASURE_KEY = "erasure"


def erasure_mark(store: StateStore) -> str:
    data = store.get(ERASURE_KEY)
    return data.decode() if data else ""


def mark_erasure(store: StateStore, *, done: bool) -> None:
    store.put(ERASURE_KEY, f"{'done' if done else 'open'} {uuid.uuid4().hex}".encode())


def erasure_intervened(store: StateStore, noted: str) -> bool:
    """Whether a forget ran (or is running) since ``noted`` was read."""
    now = erasure_mark(store)
    return now != noted or now.startswith("open")


# ------------------------------------------------------------------------------------ ActiveCampaign
async def unsubscribe_from_list(client: ActiveCampaignClient, list_id: int, emails: set[str], erased: Erased) -> None:
    """Unsubscribe the people from an owned list (forget without ``--delete-contact``): the list is this
    export's alone, so a subscriber it no longer knows would be "unexpected" to verify, and repair would
    take the email back in. As an API client does it (AC's record shows no person's action)."""
    for email in sorted(emails):
        contact = await client.find_contact(email)
        if contact is None:
            continue
        record = await client.list_record(int(contact["id"]), list_id)
        if record is None or str(record.get("status")) != "1":
            continue
        done, why = await client.unsubscribe(str(contact["id"]), list_id)
        if not done:
            raise RuntimeError(f"ActiveCampaign refused to unsubscribe a person from list {list_id}: {why}")
        erased.list_unsubscribed += 1


def tagged(store: StateStore, export: str, emails: set[str]) -> list[Untag]:
    """The people's tags as the export's synced state holds them (managed tags), to be removed before it
    forgets them: forgotten, the export could no longer tell its own links from ones the contact had before
    (``worker.run.tags``), and a link it made would stay for good once the person is sent again and leaves.
    Blocking."""
    return held_tags(SyncedState.load(store, RunKeys(export, "-").synced)[0], emails)


# ------------------------------------------------------------------------------------ synced state
def _forget_synced(store: StateStore, export: str, emails: set[str], *, fence: bool = False) -> int:
    """Commit the export's synced state without ``emails``; returns how many entries went. ``fence``: swap in
    a new generation even when nobody is to be forgotten (see ``forget_in_export``)."""
    keys = RunKeys(export, "forget")
    for _ in range(8):
        synced, version = SyncedState.load(store, keys.synced)
        if version is None:
            return 0
        wanted = sorted(emails)
        hi, lo = email_keys(wanted)
        present = [e for e, pos in zip(wanted, synced.index.lookup(hi, lo, wanted).tolist(), strict=True) if pos >= 0]
        if not present and not fence:
            return 0
        with Changes(bits_for(len(synced))) as changes:
            for email in present:
                changes.delete(email)
            if install(store, keys, synced, version, changes, None, None) is not None:  # nobody's run
                return len(present)
    raise RuntimeError(f"export {export}: the synced state kept changing while forget rewrote it")


def _orphans(store: StateStore, export: str, pattern: re.Pattern[bytes]) -> list[str]:
    """The shards of generations other than the current one (debris of crashed commits) that hold an email:
    every shard of such a generation."""
    prefix = shards_prefix(export_prefix(export))
    current_data = store.get(f"{export_prefix(export)}synced")
    current = SyncedState.decode(current_data).manifest if current_data else None
    generations: dict[str, list[str]] = {}
    for key in store.list(prefix):
        generation, sep, _ = key[len(prefix):].partition("/")
        if sep and (current is None or generation != current.generation):
            generations.setdefault(generation, []).append(key)
    return [key for keys in generations.values() if any(holds(store, k, pattern) for k in keys) for key in keys]


# ------------------------------------------------------------------------------------ reports and records
def _without(key: str, data: bytes, emails: set[str]) -> tuple[bytes | None, int]:
    """The object without the emails' lines or entries, and how many went; (None, 0) when unchanged."""
    if key.endswith(".csv"):
        return _csv_without(data, emails)
    if key.endswith(("failures.jsonl",)):
        kept, gone = [], 0
        pattern = matcher(emails)
        for line in data.splitlines(keepends=True):
            if _mentions(line, pattern):
                gone += 1
            else:
                kept.append(line)
        return (b"".join(kept), gone) if gone else (None, 0)
    if not _mentions(data, emails):
        return None, 0
    if _is_part(key):
        head, _, rest = data.partition(b"\n")
        header, gone = _part_without(orjson.loads(head), emails)
        return orjson.dumps(header) + b"\n" + rest, gone
    record = orjson.loads(data)
    if key.endswith(".accepted"):
        record, gone = _accepted_without(record, emails)
    else:  # .final records, verify reports and checkpoints: drop the emails wherever they stand
        record, gone = _scrub(record, emails)
    return orjson.dumps(record), gone


def _is_part(key: str) -> bool:
    """A plan part: ``runs/<id>/plans/<plan>/parts/part-N`` (or ``runs/<id>/plan/part-N`` of older runs)."""
    return "/parts/part-" in key or "/plan/part-" in key


def _is_run_record(key: str) -> bool:
    return _is_part(key) or "/batches/" in key


def _mentions(data: bytes, emails: set[str] | re.Pattern[bytes]) -> bool:
    """Whether ``data`` holds one of the emails as a whole address, in any case."""
    pattern = emails if isinstance(emails, re.Pattern) else matcher(emails)
    return pattern.search(data.lower()) is not None


def _is(value: Any, emails: set[str]) -> bool:
    return isinstance(value, str) and value.strip().lower() in emails


def _csv_without(data: bytes, emails: set[str]) -> tuple[bytes | None, int]:
    rows = list(csv.reader(io.StringIO(data.decode())))
    pattern = matcher(emails)
    kept = [r for r in rows if not any(_mentions(cell.encode(), pattern) for cell in r)]
    if len(kept) == len(rows):
        return None, 0
    out = io.StringIO()
    csv.writer(out).writerows(kept)
    return out.getvalue().encode(), len(rows) - len(kept)


def _part_without(header: dict[str, Any], emails: set[str]) -> tuple[dict[str, Any], int]:
    """A plan part's header without the contacts: aligned batch columns are cut at the same positions."""
    gone = 0
    invalid = header.get("invalid", [])
    header["invalid"] = [r for r in invalid if not (isinstance(r[2], str) and _mentions(r[2].encode(), emails))]
    gone += len(invalid) - len(header["invalid"])
    for name in ("dropped", "skipped", "kept_out"):
        values = header.get(name, [])
        header[name] = [e for e in values if not _is(e, emails)]
        gone += len(values) - len(header[name])
    dropped_tags = header.get("untag_dropped")
    if dropped_tags is not None:
        header["untag_dropped"] = [r for r in dropped_tags if not _is(r[0], emails)]
        gone += len(dropped_tags) - len(header["untag_dropped"])
    for b in header.get("batches", []):
        keep = [i for i, e in enumerate(b["emails"]) if not _is(e, emails)]
        if len(keep) == len(b["emails"]):
            continue
        gone += len(b["emails"]) - len(keep)
        new_at = {old: new for new, old in enumerate(keep)}
        b["emails"] = [b["emails"][i] for i in keep]
        b["fps"] = [b["fps"][i] for i in keep]
        b["ops"] = "".join(b["ops"][i] for i in keep)
        if "tg" in b:
            b["tg"] = [b["tg"][i] for i in keep]
        if "untag" in b:
            b["untag"] = [[new_at[i], names] for i, names in b["untag"] if i in new_at]
    return header, gone


def _accepted_without(record: dict[str, Any], emails: set[str]) -> tuple[dict[str, Any], int]:
    """An accepted-batch record without the emails; ``rejected`` is keyed by position, so it is renumbered."""
    keep = [i for i, e in enumerate(record.get("emails", [])) if not _is(e, emails)]
    new_at = {old: new for new, old in enumerate(keep)}
    gone = len(record.get("emails", [])) - len(keep)
    record["emails"] = [record["emails"][i] for i in keep]
    record["rejected"] = {str(new_at[int(i)]): why for i, why in record.get("rejected", {}).items()
                          if int(i) in new_at}
    kept_out = record.get("kept_out", {})
    record["kept_out"] = {e: why for e, why in kept_out.items() if not _is(e, emails)}
    return record, gone + len(kept_out) - len(record["kept_out"])


def _scrub(value: Any, emails: set[str]) -> tuple[Any, int]:
    """``value`` without list items, dict keys or [email, ...] rows that are one of the emails."""
    if isinstance(value, list):
        out, gone = [], 0
        for item in value:
            if _is(item, emails) or (isinstance(item, list) and item and _is(item[0], emails)):
                gone += 1
                continue
            item, n = _scrub(item, emails)
            out.append(item)
            gone += n
        return out, gone
    if isinstance(value, dict):
        out_d, gone = {}, 0
        for k, v in value.items():
            if _is(k, emails):
                gone += 1
                continue
            out_d[k], n = _scrub(v, emails)
            gone += n
        return out_d, gone
    return value, 0
