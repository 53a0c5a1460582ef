"""People who leave and come back: 5% of the segment re-admitted, 1% who unsubscribed themselves kept out.

Three refreshes of one segment (people numbered 0..N-1):
1. everyone; then 1% (i % 100 == 3) unsubscribe themselves through a campaign email's link;
2. 10% leave (i % 10 == 3, the 1% among them): the export unsubscribes them;
3. 5% of the segment come back (i % 20 == 13, all leavers who did not unsubscribe themselves), and the 1%
   come back too.
The 5% must be subscribed again (POST /contactLists: the list record shows an API unsubscription, ours);
the 1% must stay out (their record shows their own campaign unsubscription); no one else is touched.
"""

from __future__ import annotations

from chaos.stage import Stage
from worker.contacts.samples import email_of, make_segment


def leavers_return(stage: Stage) -> None:
    n = stage.size.profiles
    everyone = range(n)
    own = [i for i in everyone if i % 100 == 3]  # unsubscribe themselves, leave, come back
    leave = {i for i in everyone if i % 10 == 3}
    back = [i for i in everyone if i % 20 == 13]  # leavers, disjoint from `own`
    stage.start_worker(stage.config())

    first = make_segment(everyone, seed=23)
    stage.expected[3] = first.expected
    stage.wait_run(stage.publish_refresh(stage.put_snapshot("r1", first.profiles), "r1"))
    for p in (first.profiles[i] for i in own):
        stage.sim.client.unsubscribe(email_of(p), 3, how="campaign")

    second = make_segment([i for i in everyone if i not in leave], seed=23)
    stage.expected[3] = {e: p for e, p in second.expected.items()}
    stage.wait_run(stage.publish_refresh(stage.put_snapshot("r2", second.profiles), "r2"))

    third = make_segment(sorted({*(i for i in everyone if i not in leave), *back, *own}), seed=23)
    own_emails = {email_of(first.profiles[i]) for i in own}
    stage.expected[3] = {e: p for e, p in third.expected.items() if e not in own_emails}
    resubscribed_before = stage.sim.client.stats()["resubscribed"]
    event = stage.wait_run(stage.publish_refresh(stage.put_snapshot("r3", third.profiles), "r3"))

    stats = stage.sim.client.stats()
    readmitted = stats["resubscribed"] - resubscribed_before
    stage.check(readmitted == len(back), f"{readmitted} re-subscribed through contactLists, expected {len(back)}")
    stage.check(stats["resubscribed_own"] == 0,
                f"{stats['resubscribed_own']} people who unsubscribed themselves were re-subscribed")
    kept_out = sum(1 for e in own_emails if (stage.sim.client.contact_list(e, 3) or {}).get("status") == "2")
    stage.check(kept_out == len(own), f"{kept_out} of {len(own)} self-unsubscribed people still unsubscribed")
    stage.note(f"{len(leave)} left, {readmitted} of {len(back)} returning leavers re-admitted, "
               f"{kept_out} of {len(own)} self-unsubscribed kept out (run 3 counts: added "
               f"{event['counts']['added']}, skipped {event['counts']['skipped']})")
