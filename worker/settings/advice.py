"""Advice about a valid config: what ``config check`` prints as notes (never an error: runs are not refused).

Why here: the notes are about the config's meaning (which exports reach the same ActiveCampaign account and
what they share), so they sit beside the model they read; the CLI only prints them.
"""

from __future__ import annotations

from collections import defaultdict

from worker.settings.model import Config


def shared_managed_tags(config: Config) -> list[str]:
    """One note per tag name (ignoring case, as ActiveCampaign does) that two or more exports of one account
    add while at least one of them removes the tags it added (``remove_tags``). Tags are the account's: a
    contact keeps such a tag while any of those exports' synced state gives it, but what the other export
    sent from a ``tag_field``, or while its ``remove_tags`` was off, it does not know, and a removal is then
    one export undoing another's tag."""
    by_account: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    managing: set[str] = set()
    for name, export in sorted(config.exports.items()):
        account = config.connections[export.connection].api_url
        for tag in dict.fromkeys(t.casefold() for t in export.tags or ()):
            by_account[account][tag].append(name)
        if export.remove_tags and (export.tags or export.tag_field):
            managing.add(name)
    notes = []
    for tags in by_account.values():
        for tag, names in sorted(tags.items()):
            if len(names) > 1 and managing.intersection(names):
                notes.append(f"exports {', '.join(names)} add the same tag {tag!r} on one ActiveCampaign account and "
                             f"{', '.join(sorted(managing.intersection(names)))} remove(s) it when it stops "
                             f"applying: a contact keeps it while any of their synced states gives it; give each "
                             f"export its own tag names, or set remove_tags = false")
    return notes
