"""Dry runs for people: what a run would change, ready to print (``sync --dry-run``, ``request --dry-run``).

Why apart from the engine: the engine's dry run computes (counts, samples, ``would_fail``); this module
decides what a person may see. Sample emails are masked unless asked otherwise: the output lands in
terminals, tickets and chat, where full addresses do not belong. ``would_fail`` (``too_many_profiles``,
``removal_guard``, ...) is kept next to the counts: someone deciding whether to raise a cap or override
the removal guard wants both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.events.envelopes import SnapshotRef
    from worker.run.engine import Engine
    from worker.run.types import RunSpec
    from worker.settings import Export


class PreviewError(Exception):
    """The preview cannot be made (the run would fail before planning); the message says why."""


class NoSnapshot(PreviewError):
    """``request --dry-run`` without ``--snapshot`` for an export whose segment never refreshed."""


async def preview(engine: Engine, spec: RunSpec, *, show_emails: bool = False) -> dict[str, Any]:
    """The engine's dry run of ``spec``, sample emails masked unless ``show_emails``; nothing is sent or written."""
    from worker.activecampaign.client import ActiveCampaignError
    from worker.contacts.mapping import mask_email
    from worker.run.dryrun import dry_run
    from worker.run.types import RunError
    from worker.state import StateError

    try:
        result = await dry_run(engine, spec)
    except RunError as exc:
        raise PreviewError(exc.message) from None
    except ActiveCampaignError as exc:
        raise PreviewError(f"ActiveCampaign: {exc}") from None
    except StateError as exc:
        raise PreviewError(str(exc)) from None
    if not show_emails:
        for rows in result["samples"].values():
            for row in rows:
                if row.get("email"):
                    row["email"] = mask_email(row["email"])
    result["snapshot"] = spec.snapshot_uri
    return result


def would_fail(result: dict[str, Any]) -> str | None:
    """The reason a real run would fail (``code: message``), or None if it would go ahead."""
    failure = result.get("would_fail")
    return f"{failure['code']}: {failure['message']}" if failure else None


async def requested_spec(engine: Engine, export: Export, snapshot: SnapshotRef | None, *, full: bool = False,
                         allow_mass_removal: bool = False) -> RunSpec:
    """The run an ``export.requested`` with these fields would start, as a worker would resolve it.

    Without a snapshot, the segment's last known one (what a worker uses); raises NoSnapshot when the
    segment has never refreshed.
    """
    from worker.run.types import RunSpec

    if snapshot is None:
        last = await engine.last_snapshot(export.name)
        if last is None:
            raise NoSnapshot(f"export {export.name} has no known snapshot yet (no segment.refreshed seen); "
                             f"pass --snapshot URI")
        snapshot = last["snapshot"]
    return RunSpec(export=export, snapshot_uri=snapshot["uri"], refresh_id="dry-run", run_id="dry-run", full=full,
                   snapshot_format=snapshot.get("format"), snapshot_compression=snapshot.get("compression"),
                   allow_mass_removal=allow_mass_removal)
