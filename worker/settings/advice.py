"""Advice about a valid config: what ``config check`` prints as notes (never an error: runs are not refused).

Why here: the notes are about the config's meaning (which exports reach the same ActiveCampaign account and
what they share), so they sit beside the model they read; the CLI only prints them.
"""

from __future__ import annotations

from collections import defaultdict

from worker.settings.model import Config


def shared_managed_tags(config: Config) -> list[str]:
    """One note per account where an export removes the tags it added from a ``tag_field`` while another
    export adds tags too. Two exports adding the same static tag, one of them removing it, is refused
    (``Config.check``); a ``tag_field`` value cannot be checked before it is read. Such a value that another
    export also gives stays while that export's committed state gives it; which export's link came first
    cannot be told, and a run of the other export in progress is not seen (README "Managed tags")."""
    by_account: dict[str, list[str]] = defaultdict(list)
    fields: set[str] = set()
    for name, export in sorted(config.exports.items()):
        if export.tags or export.tag_field:
            by_account[config.connections[export.connection].account].append(name)
        if export.remove_tags and export.tag_field:
            fields.add(name)
    notes = []
    for names in by_account.values():
        if len(names) > 1 and fields.intersection(names):
            notes.append(f"exports {', '.join(names)} add tags on one ActiveCampaign account and "
                         f"{', '.join(sorted(fields.intersection(names)))} remove(s) the tags its tag_field gave: "
                         f"a value that another of them also gives is kept while that export holds the contact, "
                         f"but is not told apart beyond that; give each export's tag_field values their own prefix "
                         f"(a tag_separator-split field can hold \"interest:golf\")")
    return notes
