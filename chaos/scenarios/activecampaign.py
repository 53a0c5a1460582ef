"""ActiveCampaign misbehaving: a steady drizzle of faults, then a long outage.

Faults come from the simulator's own knobs: ``error_rate`` (random 500/502/503 before anything is done),
``storm_every``/``storm_duration`` (every request answered 429 with Retry-After during a storm) and
``latency`` (every answer late). The outage is ``error_rate = 1.0`` for ``ac_outage_seconds`` (120 in the
full suite): longer than the client's own retries, so the run fails transiently and is retried as a delayed
continuation (``run_retry_base_seconds = 1``) until ActiveCampaign is back; only then one completion.
"""

from __future__ import annotations

from chaos.stage import Stage
from worker.contacts.samples import make_segment


def _segment(stage: Stage, seed: int) -> str:
    seg = make_segment(range(stage.size.profiles), invalid_rate=0.005, duplicate_rate=0.005, seed=seed)
    stage.expected[3] = seg.expected
    return stage.put_snapshot("segment", seg.profiles)


def faults_storms_latency(stage: Stage) -> None:
    uri = _segment(stage, 13)
    stage.sim.client.configure(error_rate=0.1, latency=1.0, storm_every=10.0, storm_duration=2.0)
    stage.start_worker(stage.config())
    run_id = stage.publish_refresh(uri, "faults-1")
    stage.wait_run(run_id)
    stats = stage.sim.client.stats()
    stage.sim.client.configure(error_rate=0.0, latency=0.0, storm_every=0.0, storm_duration=0.0)
    stage.note(f"{stats['errors_injected']} 5xx injected, {stats['storm_limited']} 429s in storms, "
               f"{stats['rate_limited']} over the budget, of {stats['requests']} requests")
    stage.check(stats["errors_injected"] > 0 and stats["storm_limited"] > 0,
                "the run never met a 5xx or a storm: it proved nothing")


def outage(stage: Stage) -> None:
    uri = _segment(stage, 17)
    worker = stage.start_worker(stage.config(worker={"max_run_attempts": 10}))
    run_id = stage.publish_refresh(uri, "outage-1")
    stage.wait(lambda: stage.records("vip", run_id)[1] >= 2, stage.size.timeout, "the run to be sending", 0.1)
    stage.sim.client.configure(error_rate=1.0)
    stage.hold(stage.size.ac_outage_seconds)
    stage.sim.client.configure(error_rate=0.0)
    stage.wait_run(run_id)
    retries = worker.text().count("run failed transiently")
    stage.note(f"ActiveCampaign down for {stage.size.ac_outage_seconds:.0f} s mid-run; "
               f"{retries} transient run failure(s) retried; "
               f"{stage.sim.client.stats()['errors_injected']} 5xx answered")
    stage.check(retries >= 1, "the outage never failed the run: the retry path was not exercised "
                "(make ac_outage_seconds longer than the client's own retries)")
