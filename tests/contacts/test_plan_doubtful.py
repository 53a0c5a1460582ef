"""Doubtful entries: a removal or re-entry whose outcome is unknown (worker.run.settle) is planned so that
ActiveCampaign's list record decides (re-entry way) when the person is a member, and removed again when not."""

from __future__ import annotations

from tests.syncstate.support import export, pages
from worker.contacts.mapping import Mapper
from worker.contacts.plan import READMIT, REMOVE, UPDATE, Planner
from worker.contacts.synced import SyncedState
from worker.syncstate.index import SUBSCRIBED, UNSUBSCRIBED
from worker.syncstate.merge import Changes, apply
from worker.syncstate.source import block_of

ROWS = [{"E": "member@example.com", "F": "M"}]
STATE = {"member@example.com": ("", "", "1700000000"),  # doubtful: "subscribed", no fingerprint, a time
         "leaver@example.com": ("", "", "1700000100")}


def planned(readmit: bool) -> tuple[dict[str, str], Planner]:
    exp = export(readmit=readmit)
    planner = Planner(Mapper(exp), SyncedState.from_entries(STATE), readmit=readmit)
    ops = {}
    for part in planner.plan(pages(ROWS)):
        for b in part.batches:
            ops.update(zip(b.emails, b.ops, strict=True))
    return ops, planner


def test_a_doubtful_member_goes_the_reentry_way_and_a_doubtful_leaver_is_removed_again() -> None:
    ops, planner = planned(readmit=True)
    assert ops == {"member@example.com": READMIT, "leaver@example.com": REMOVE}
    assert planner.left_at == {"member@example.com": 1700000000}


def test_without_readmit_a_doubtful_member_is_sent_as_an_update() -> None:
    ops, _ = planned(readmit=False)
    assert ops == {"member@example.com": UPDATE, "leaver@example.com": REMOVE}


def test_the_earlier_unsubscription_time_is_kept() -> None:
    """Re-entry compares the time this export unsubscribed someone with AC's record of it: a removal sent
    again (or an outcome unknown) must not move that time later than the first unsubscription."""
    old = block_of([("a@example.com", "", "", "100"), ("b@example.com", "", "u", "50"),
                    ("c@example.com", "00000000000000aa", "", "")])
    changes = Changes(0)
    changes.set("a@example.com", 0, "u", 200)  # doubtful, then removed again: still unsubscribed since 100
    changes.set("b@example.com", 0, "", 80)  # unsubscribed at 50, re-entry outcome unknown: doubtful since 50
    changes.set("c@example.com", 0, "u", 300)  # an ordinary removal
    new = apply(old, changes.partition(0))
    got = {e: (int(f), int(s)) for e, f, s in zip(new.emails, new.flag.tolist(), new.since.tolist(), strict=True)}
    assert got == {"a@example.com": (UNSUBSCRIBED, 100), "b@example.com": (SUBSCRIBED, 50),
                   "c@example.com": (UNSUBSCRIBED, 300)}
