"""``segment-export verify --export NAME [--repair]``: read the list back and compare it with the synced state.

Prints a table (counts, never emails) on stdout and keeps the JSON report, with the emails, in the
state store (``worker.run.verify``). ``--repair`` then changes the synced state so that the next run
makes the list right, holding the export's lease. Exit 0: the list is in step (or was repaired);
3: differences found; 1: verify failed (run it again: it resumes); 2: bad usage or config.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import TYPE_CHECKING

from worker.commands import common

if TYPE_CHECKING:
    from worker.settings import Config
    from worker.state import StateStore

log = logging.getLogger("segment_export.cli")


def add_options(p: argparse.ArgumentParser) -> None:
    common.add_config_option(p)
    p.add_argument("--export", required=True, help="the export's name ([exports.NAME] in the config)")
    p.add_argument("--repair", action="store_true",
                   help="then have the next run make the list right: re-send missing contacts, stop counting "
                        "unsubscribed ones, and on an owned list unsubscribe the unexpected (removal guard)")


def run(args: argparse.Namespace) -> int:
    from worker.activecampaign.errors import ActiveCampaignError
    from worker.run.exclusive import ExportBusy
    from worker.run.verify import ForgetIntervened, StateChanged, StateReplaced
    from worker.state import StateError

    config = common.load(args)
    export = config.export(args.export)
    common.check_keys(config, [export.name])
    store = common.open_state(config)
    try:
        table, differences = asyncio.run(_verify(config, store, export.name, args.repair))
    except (StateReplaced, ForgetIntervened) as exc:
        return common.fail(f"verify stopped: {exc}", common.EXIT_FAILED)
    except (ActiveCampaignError, StateError) as exc:
        return common.fail(f"verify stopped: {exc}; run it again to resume", common.EXIT_FAILED)
    except (ExportBusy, StateChanged) as exc:
        return common.fail(f"not repaired: {exc}; run verify --repair again", common.EXIT_FAILED)
    sys.stdout.write(table)
    return common.EXIT_OK if not differences or args.repair else common.EXIT_PARTIAL


async def _verify(config: Config, store: StateStore, name: str, repair: bool) -> tuple[str, int]:
    from worker.run import verify
    from worker.run.engine import Engine
    from worker.run.exclusive import fold_open_plans, holding, leases_for
    from worker.run.runbook import Runbook
    from worker.run.tags import TagRemover, held_tags

    export = config.export(name)
    engine = Engine(config, store)

    def on_page(phase: str, requests: int) -> None:
        if requests % 100 == 0:
            log.info("verify %s: %s contacts, %d requests", name, phase, requests)

    try:
        async with engine.client_for(export) as client:
            verifier = verify.Verifier(store, export, client, on_page=on_page)
            findings, synced, version = await verifier.run()
        uri = await asyncio.to_thread(verifier.write_report, findings)
        if repair and findings.differences:
            async with holding(leases_for(config, store, "verify"), name, wait=config.worker.lease_seconds + 2):
                if await fold_open_plans(store, export, lambda: engine.client_for(export),
                                         others=engine.given_by_others(export)):
                    raise verify.StateChanged("an unfinished run's plan was folded into the synced state first")
                # Managed tags: people repair marks as this export's leavers lose its tags now: as leavers the
                # state keeps them without tags, and no later run would remove what they still hold.
                items = await asyncio.to_thread(held_tags, synced, findings.unsubscribed_by_export)
                if items and export.remove_tags:
                    # ... and only while the state is the one verify read: a run that committed (or claimed it)
                    # since may have taken these people back in, with their tags.
                    await asyncio.to_thread(verify.still_current, store, export, findings, synced, version)
                    async with engine.client_for(export) as client:
                        await TagRemover(client, Runbook(store, name, "verify"), export.list_id,
                                         others=engine.given_by_others(export)).remove_now(items)
                findings.repaired = await asyncio.to_thread(verify.repair, store, export, findings, synced, version,
                                                            uri)
                uri = await asyncio.to_thread(verifier.write_report, findings)  # before a forget can scrub it
        return findings.table(uri), findings.differences
    finally:
        await engine.aclose()
