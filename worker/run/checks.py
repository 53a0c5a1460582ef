"""Before any request of a run: the checks that may refuse it, so that a refused run changed nothing.

- the list exists and the key works (one cheap request; a bad key answered with an HTML login page
  fails here too);
- the snapshot holds no more than the export's ``max_profiles`` (a counting pass);
- the snapshot is read whole (``check_removals``, always): a part that is not well-formed, or a CSV
  header without the mapped email column, fails the run here, before the first request, however late
  in the snapshot the damage is; and on that pass the removal guard (``worker.run.guard``): the run
  would not unsubscribe more of the list than the export allows, unless overridden for this run;
- and, while planning, the same guard again on the leavers actually found, before any of them is
  handed to the sender (the snapshot may have changed since the first pass).

Why passes of their own: planning and sending overlap (the first batch leaves after the first page),
so a check that waited for the end of planning would refuse a run that had already sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from worker.activecampaign.client import ActiveCampaignClient
from worker.contacts.plan import Counts
from worker.contacts.synced import SyncedState
from worker.run.guard import CODE as GUARD_CODE
from worker.run.guard import Removals, count_removals, verdict
from worker.run.types import RunError, RunSpec
from worker.settings import Export
from worker.snapshot import Page, with_column

Pages = Callable[[], Iterator[Page]]


async def check_list(client: ActiveCampaignClient, export: Export) -> None:
    """The list exists and the key works (401/403, or AC's HTML login page, fail the run here)."""
    if await client.get_list(export.list_id) is None:
        raise RunError("list_not_found", f"export {export.name}: ActiveCampaign has no list with id "
                                         f"{export.list_id}; fix exports.{export.name}.list_id")


def count_profiles(pages: Pages) -> int:
    """Profiles in the snapshot (as a run counts them); reads it once."""
    return sum(len(page.rows) for page in pages())


def check_max_profiles(export: Export, pages: Pages) -> None:
    """Refuse a snapshot holding more than the export's ``max_profiles`` (only read when the cap is set)."""
    cap = export.max_profiles
    if not cap:
        return
    count = count_profiles(pages)
    if count > cap:
        raise RunError("too_many_profiles",
                       f"the snapshot holds {count:,} profiles, more than max_profiles = {cap:,} "
                       f"(exports.{export.name}.max_profiles); nothing was sent. Check the segment, "
                       f"or raise the cap if it is right")


def check_removals(spec: RunSpec, synced: SyncedState, pages: Pages) -> None:
    """Read the whole snapshot before any request; on the way, the removal guard's count of leavers.

    Raises SnapshotError (``snapshot_unreadable``) for a part that cannot be read whole or lacks the email
    column, RunError(``removal_guard``) when the guard trips. The read happens even when the guard does
    not apply (a first run, ``on_leave = "keep"``, an override): sending overlaps with planning, so damage
    at the end of a snapshot would otherwise be found after the first batches were sent.
    """
    export = spec.export
    column = export.mapping["email"]
    read = with_column(pages(), column, f"exports.{export.name}.mapping.email")
    if spec.allow_mass_removal or export.on_leave != "unsubscribe" or not synced.subscribed():
        for _ in read:
            pass
        return
    message = verdict(export, count_removals(export, synced, read))
    if message:
        raise RunError(GUARD_CODE, message)


def check_leavers(spec: RunSpec, totals: Counts, synced: SyncedState) -> None:
    """The guard again on the plan's own figures, once its leavers are known and before any is sent."""
    if spec.allow_mass_removal:
        return
    message = verdict(spec.export, Removals(totals.to_remove, synced.subscribed(), totals.profiles - totals.invalid))
    if message:
        raise RunError(GUARD_CODE, message)
