"""A run started by hand (``segment-export sync``): which run it is, so a re-run resumes it.

Why a module: the worker derives its run id from the event's refresh id; a direct run has no event, so
its id is derived from what makes it the same run: the export, the snapshot's content identity, the
committed state it starts from, and ``--full``. Run the same command again after a crash and it
resumes; run it after a commit and it is a new run.
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
    run_id = sync_run_id(export.name, identity, committed_run_id(store, export.name), full)
    return RunSpec(export=export, snapshot_uri=snapshot_uri, refresh_id=refresh_id or f"manual-{run_id[5:]}",
                   run_id=run_id, full=full, snapshot_format=snapshot_format,
                   snapshot_compression=snapshot_compression, allow_mass_removal=allow_mass_removal)
