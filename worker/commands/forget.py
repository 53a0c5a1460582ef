"""``segment-export forget --email ADDRESS ... | --file emails.txt [--delete-contact]``: erasure requests.

Removes the people from every configured export's synced state, kept failure reports, run records and
verify reports (``worker.run.erasure``), holding each export's lease; with ``--delete-contact`` also
deletes them in each ActiveCampaign account the exports use. Prints counts as JSON, never an email.
Exit 0 done; 1 something failed or an email is still found in the store (run it again); 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
from pathlib import Path
from typing import TYPE_CHECKING

from worker.commands import common

if TYPE_CHECKING:
    from worker.run.erasure import Erased
    from worker.settings import Config
    from worker.state import StateStore


def add_options(p: argparse.ArgumentParser) -> None:
    common.add_config_option(p)
    p.add_argument("--email", action="append", default=[], help="an email to forget (repeat for more)")
    p.add_argument("--file", help="a file of emails to forget, one a line")
    p.add_argument("--delete-contact", action="store_true",
                   help="also delete the contacts in ActiveCampaign (every account the exports use)")


def run(args: argparse.Namespace) -> int:
    from worker.activecampaign.errors import ActiveCampaignError
    from worker.run.erasure import Erased, normalize
    from worker.run.exclusive import ExportBusy
    from worker.state import StateError

    raw = list(args.email)
    if args.file:
        try:
            raw += Path(args.file).read_text().splitlines()
        except OSError as exc:
            return common.fail(f"--file {args.file}: {exc.strerror}")
    emails = normalize(raw)
    if not emails:
        return common.fail("give the emails to forget with --email or --file")
    config = common.load(args)
    if args.delete_contact or any(e.owns_list or (e.remove_tags and (e.tags or e.tag_field))
                                  for e in config.exports.values()):
        common.check_keys(config)
    store = common.open_state(config)
    erased = Erased(emails=len(emails))
    try:
        asyncio.run(_forget(config, store, emails, erased, args.delete_contact))
    except (ActiveCampaignError, StateError, ExportBusy, RuntimeError) as exc:
        common.print_json(erased.as_dict())
        return common.fail(f"forget stopped: {exc}; run it again (what was done stays done)", common.EXIT_FAILED)
    common.print_json(erased.as_dict())
    if erased.residue:
        return common.fail(f"{erased.residue} objects in the state store still hold one of the emails",
                           common.EXIT_FAILED)
    return common.EXIT_OK


async def _forget(config: Config, store: StateStore, emails: set[str], erased: Erased, delete_contact: bool) -> None:
    from worker.run.engine import Engine
    from worker.run.erasure import forget_in_export, mark_erasure, tagged, unsubscribe_from_list
    from worker.run.exclusive import fold_open_plans, holding, leases_for
    from worker.run.runbook import Runbook
    from worker.run.tags import TagRemover

    await asyncio.to_thread(mark_erasure, store, done=False)  # verify gives up until this forget is done
    leases = leases_for(config, store, "forget")
    engine = Engine(config, store)  # a client when an open plan must be folded in first, or an owned list
    try:
        for name in sorted(config.exports):
            export = config.exports[name]
            async with holding(leases, name, wait=config.worker.lease_seconds + 2):
                await fold_open_plans(store, export, functools.partial(engine.client_for, export),
                                      others=engine.given_by_others(export))
                if export.owns_list and not delete_contact:
                    async with engine.client_for(export) as client:
                        await unsubscribe_from_list(client, export.list_id, emails, erased)
                items = [] if delete_contact or not export.remove_tags else await asyncio.to_thread(
                    tagged, store, name, emails)
                if items:  # the tags it gave them: forgotten, it could never tell them from the contact's own
                    async with engine.client_for(export) as client:
                        remover = TagRemover(client, Runbook(store, name, "forget"), export.list_id,
                                             others=engine.given_by_others(export))
                        erased.tags_removed += await remover.remove_now(items)
                await asyncio.to_thread(forget_in_export, store, name, emails, erased)
    finally:
        await engine.aclose()
    if delete_contact:
        await _delete_contacts(config, store, emails, erased)
    await asyncio.to_thread(mark_erasure, store, done=True)


async def _delete_contacts(config: Config, store: StateStore, emails: set[str], erased: Erased) -> None:
    """Delete the contacts in each account the exports use (an account once, however many exports)."""
    from worker.run.engine import Engine

    engine = Engine(config, store)
    seen: set[str] = set()
    try:
        for export in config.exports.values():
            connection = config.connections[export.connection]
            if connection.account in seen:
                continue
            seen.add(connection.account)
            async with engine.client_for(export) as client:
                for email in sorted(emails):
                    contact = await client.find_contact(email)
                    if contact is not None and await client.delete_contact(int(contact["id"])):
                        erased.contacts_deleted += 1
                    else:
                        erased.contacts_not_found += 1
    finally:
        await engine.aclose()
