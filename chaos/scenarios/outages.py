"""The worker's servers go away mid-run and come back: RabbitMQ, then S3 (the state store and snapshots).

Neither shared server is touched: the worker reaches each through a TCP proxy of this scenario's own
(``chaos.proxy``), which is cut (every connection reset, new ones refused) and later restored at the same
address. For the worker that is a broker restart, or an S3 outage, in the middle of sending.
"""

from __future__ import annotations

from chaos.stage import BATCH, Stage
from worker.contacts.samples import make_segment


def _start_sending(stage: Stage, refresh_id: str) -> tuple[str, int]:
    """A run of the whole segment, spread over ~20 s by the worker's budget, seen sending: (run id, batches)."""
    seg = make_segment(range(stage.size.profiles), invalid_rate=0.005, duplicate_rate=0.005, seed=11)
    stage.expected[3] = seg.expected
    uri = stage.put_snapshot("segment", seg.profiles)
    batches = -(-len(seg.expected) // BATCH)
    stage.start_worker(stage.config(rate_scale=max(0.2, batches * 3 / 100)))
    run_id = stage.publish_refresh(uri, refresh_id)
    stage.wait(lambda: max(2, batches // 5) <= stage.records("vip", run_id)[1] < batches // 2 + 1,
               stage.size.timeout, "the run to be sending", interval=0.1)
    return run_id, batches


def rabbitmq_outage(stage: Stage) -> None:
    run_id, batches = _start_sending(stage, "broker-outage")
    worker = stage.workers[0]
    stage.amqp_proxy.cut()
    stage.check(stage.eventually(lambda: stage.readyz(worker) == 503, 60),
                "/readyz kept answering 200 with RabbitMQ unreachable")
    stage.hold(stage.size.broker_outage_seconds)
    accepted = stage.records("vip", run_id)[1]
    stage.note(f"RabbitMQ unreachable for {stage.size.broker_outage_seconds:.0f} s while sending "
               f"({accepted}/{batches} batches accepted at the restore; {stage.amqp_proxy.refused} "
               "connection attempts refused)")
    stage.amqp_proxy.restore()
    stage.wait(lambda: stage.readyz(worker) == 200, 120, "/readyz to recover once RabbitMQ is back")
    stage.wait_run(run_id)
    stage.note(f"{stage.resent()} contacts re-sent")
    stage.check(stage.amqp_proxy.refused > 0, "the worker never tried to reconnect during the outage")
    stage.check(worker.alive() and worker.text().count("worker consuming") == 1,
                "the worker did not ride the outage out in the same process")


def s3_outage(stage: Stage) -> None:
    run_id, batches = _start_sending(stage, "s3-outage")
    worker = stage.workers[0]
    stage.s3_proxy.cut()
    stage.hold(stage.size.s3_outage_seconds)
    accepted = stage.records("vip", run_id)[1]  # the harness reads S3 directly
    stage.note(f"S3 unreachable for {stage.size.s3_outage_seconds:.0f} s while sending ({accepted}/{batches} "
               f"batches accepted; {stage.s3_proxy.refused} connections refused)")
    stage.s3_proxy.restore()
    stage.wait_run(run_id)
    stage.check(stage.s3_proxy.refused > 0, "the worker never tried S3 during the outage: nothing was shown")
    retries = worker.text().count("run failed transiently")
    stage.note(f"{retries} transient run failure(s) retried; {stage.resent()} contacts re-sent")
    stage.check(worker.alive() and worker.text().count("worker consuming") == 1,
                "the worker did not ride the outage out in the same process")
