"""A run started by hand (``segment-export sync``): which run it is, so a re-run resumes it.

Why a module: the worker derives its run id from the event's refresh id; a direct run has no event, so
its id is derived from what makes it the same run: the export, the snapshot's content identity, the
committed state it starts from, and ``--full``. Run the same command again after a crash and it
resumes; run it after a commit and it is a new run.

One crash needs more: a sync that died after its commit (the manifest swap) and before its completion
record. Its commit changed the base, so the same command would derive a new run id, and the crashed run's
completion would never be recorded (its plan records left for retention). So when the committed state is a
sync of the same snapshot and ``--full`` (its id derived from the commit before it) with no completion
record, the same command takes that run id: the engine finds the commit and ends the run with its
counts, sending nothing (``worker.run.engine``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from worker.run.runbook import RunKeys, sync_run_id

if TYPE_CHECKING:
    from worker.run.types import RunSpec
    from worker.settings import Export
    from worker.state import StateStore

log = logging.getLogger("segment_export.cli")


def committed_run_id(store: StateStore, export: str) -> str:
    """The run id that committed the export's synced state ('' before the first commit)."""
    from worker.contacts.synced import SyncedState

    data = store.get(RunKeys(export, "-").synced)
    return SyncedState.decode(data).run_id if data else ""


def unfinished_sync(store: StateStore, export: str, identity: str, full: bool) -> str | None:
    """The run id of a sync of this snapshot (and ``full``) that committed the export's state and has no
    completion record: it died between its commit and its completion (see the module docstring)."""
    from worker.contacts.synced import SyncedState

    data = store.get(RunKeys(export, "-").synced)
    manifest = SyncedState.decode(data).manifest if data else None
    if manifest is None or not manifest.run_id.startswith("sync-"):
        return None
    before = manifest.recent[0].run_id if manifest.recent else ""  # the commit this run was made against
    if manifest.run_id != sync_run_id(export, identity, before, full):
        return None
    return manifest.run_id if store.get(RunKeys(export, manifest.run_id).completed) is None else None


def direct_spec(store: StateStore, export: Export, snapshot_uri: str, *, full: bool = False,
                refresh_id: str | None = None, snapshot_format: str | None = None,
                snapshot_compression: str | None = None, allow_mass_removal: bool = False) -> RunSpec:
    """The RunSpec of a direct run of ``export`` on ``snapshot_uri``.

    An unreadable snapshot still gets a run (it fails with ``snapshot_unreadable`` and its event), so
    its identity is the URI itself, with a warning.
    """
    from worker.run.types import RunSpec
    from worker.snapshot import SnapshotError, SnapshotRules, snapshot_identity

    try:
        identity = snapshot_identity(snapshot_uri, SnapshotRules(require_marker=export.require_marker,
                                                                 entity=export.snapshot_entity))
    except SnapshotError as exc:
        identity = f"unreadable:{snapshot_uri}"
        log.warning("%s", exc)
    run_id = (unfinished_sync(store, export.name, identity, full)
              or sync_run_id(export.name, identity, committed_run_id(store, export.name), full))
    return RunSpec(export=export, snapshot_uri=snapshot_uri, refresh_id=refresh_id or f"manual-{run_id[5:]}",
                   run_id=run_id, full=full, snapshot_format=snapshot_format,
                   snapshot_compression=snapshot_compression, allow_mass_removal=allow_mass_removal)
