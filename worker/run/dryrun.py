"""The dry run: what a run would change, computed as a run computes it, sending and writing nothing.

Its only request to ActiveCampaign is the custom field lookup; it plans the snapshot against the synced
state exactly as a run would and stops there. Why apart from the engine: it shares the engine's parts
(client, mapper, planner) but none of its bookkeeping; ``worker.run.preview`` decides what a person sees.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from worker.contacts.mapping import Mapper
from worker.run.commit import OPERATIONS
from worker.run.guard import CODE as GUARD_CODE
from worker.run.guard import Removals, verdict
from worker.run.runbook import Runbook
from worker.run.types import RunError, RunSpec
from worker.snapshot import SnapshotError

if TYPE_CHECKING:
    from worker.run.engine import Engine

SAMPLE_ROWS = 20


async def dry_run(engine: Engine, spec: RunSpec) -> dict[str, Any]:
    """What a run would change: counts per outcome and up to 20 sample rows per outcome.

    Sends no write request (its only calls to ActiveCampaign are the custom field lookup) and
    writes nothing to the state store. A run that would be refused (``max_profiles``, the removal
    guard) is reported in ``would_fail`` next to the counts (a person deciding whether to override
    wants both); a mapping that cannot be resolved raises RunError, as the run would. Sample emails
    are full here; the command line masks them unless asked not to.
    """
    book = Runbook(engine.store, spec.export.name, spec.run_id)
    synced, _ = await asyncio.to_thread(engine.load_synced, book)
    async with engine.client_for(spec.export) as client:
        mapper = await engine.mapper_for(client, spec.export)
    planner = engine.planner_for(spec, mapper, synced)
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in (*OPERATIONS.values(), "invalid", "skipped")}

    def walk() -> None:
        for part in planner.plan(engine.pages(spec)):
            for source, line, email, reason in part.invalid:
                if len(samples["invalid"]) < SAMPLE_ROWS:
                    samples["invalid"].append({"email": email, "source": source, "line": line, "reason": reason})
            for email in part.skipped:
                if len(samples["skipped"]) < SAMPLE_ROWS:
                    samples["skipped"].append({"email": email, "reason": "unsubscribed_in_activecampaign"})
            for b in part.batches:
                for op, contact in zip(b.ops, b.contacts, strict=True):
                    rows = samples[OPERATIONS[op]]
                    if len(rows) < SAMPLE_ROWS:
                        rows.append(_sample_row(mapper, contact))

    try:
        await asyncio.to_thread(walk)
    except SnapshotError as exc:
        raise RunError("snapshot_unreadable", str(exc)) from None
    t = planner.totals
    counts = {"profiles": t.profiles, "invalid": t.invalid, "duplicates": t.duplicates,
              "added": t.to_add + t.to_readmit, "updated": t.to_update, "unchanged": t.unchanged,
              "removed": t.to_remove, "failed": 0, "skipped": t.skipped}
    result: dict[str, Any] = {"export": spec.export.name, "dry_run": True, "counts": counts,
                              "readmit": t.to_readmit, "samples": samples}
    cap = spec.export.max_profiles
    if cap and t.profiles > cap:
        result["would_fail"] = {"code": "too_many_profiles",
                                "message": f"the snapshot holds {t.profiles:,} profiles, more than "
                                           f"max_profiles = {cap:,} (exports.{spec.export.name}.max_profiles); "
                                           f"a run would send nothing"}
    elif not spec.allow_mass_removal:
        valid = t.profiles - t.invalid
        message = verdict(spec.export, Removals(t.to_remove, synced.subscribed(), valid))
        if message:
            result["would_fail"] = {"code": GUARD_CODE, "message": message.replace("Nothing was sent",
                                                                                   "A run would send nothing")}
    return result


def _sample_row(mapper: Mapper, contact: dict[str, Any]) -> dict[str, Any]:
    """A dry-run sample: the contact as it would be sent, custom fields by the export's names for them."""
    row = dict(contact)
    if "fields" in row:
        row["fields"] = {mapper.field_names.get(f["id"], str(f["id"])): f["value"] for f in row["fields"]}
    return row
