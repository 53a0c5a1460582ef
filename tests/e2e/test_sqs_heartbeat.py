"""The SQS visibility heartbeat under real faults (issue 19, defect 3).

A real worker process on moto's SQS, reached through an HTTP proxy (``tests/broker/faults.py``) that
answers chosen ``ChangeMessageVisibility`` calls with a real error response; the worker's own botocore
meets them (and retries them) as it would meet AWS's throttling. Before the fix, one failed call ended the
heartbeat for the rest of the run: the message reappeared after its visibility timeout and was received
again while the first run was still going.

The hostile review added a hung call (issue 19 review, defect 8): the proxy reads one
``ChangeMessageVisibility`` request and never answers it. Before, that one call held the heartbeat (and
the broker thread) for botocore's 60 s read timeout and its retries, so the message reappeared and was
received again; now the call gives up in seconds, the heartbeat notices, backs off and beats again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.broker.faults import SqsFaultProxy
from tests.e2e.conftest import SqsBroker, refreshed, wait_for, write_config
from worker.contacts.samples import make_segment, write_jsonl

CMV = "ChangeMessageVisibility"


@pytest.fixture
def proxy(moto_server: str) -> Iterator[SqsFaultProxy]:
    p = SqsFaultProxy(moto_server)
    try:
        yield p
    finally:
        p.close()


def _through(broker: SqsBroker, proxy: SqsFaultProxy) -> SqsBroker:
    broker.url = f"sqs://testing:testing@127.0.0.1:{proxy.port}"  # the worker (and our publishes) via the proxy
    return broker


def _received(proxy: SqsFaultProxy) -> list[str]:
    return [m for c in proxy.seen("ReceiveMessage") for m in c.message_ids]


def test_one_throttled_visibility_extension_does_not_end_the_heartbeat(
        tmp_path: Path, sim, make_sqs, workers, proxy: SqsFaultProxy) -> None:
    broker = _through(make_sqs(visibility_timeout=15), proxy)  # a beat every 5 s
    sim.client.configure(processing_delay=25.0)  # the run waits ~25 s for its batches: several beats due
    seg = make_segment(range(600), invalid_rate=0.0, seed=3)
    worker = workers(write_config(tmp_path, sim, broker))
    proxy.fail(CMV, code="ThrottlingException")  # the first heartbeat: every attempt botocore makes throttled
    broker.publish(refreshed(write_jsonl(tmp_path / "snap" / "s.jsonl", seg.profiles), refresh_id="hb-1"))

    broker.wait_completions(1, 150, check=worker.assert_alive)
    broker.wait_idle(60, check=worker.assert_alive)

    calls = proxy.seen(CMV)
    failed = [c for c in calls if c.faulted]
    assert failed and len({c.invocation for c in failed}) == 1, "the one throttled call did not happen"
    assert len(_received(proxy)) == 1, "the message became visible again and was received a second time"
    [receipt] = [r for c in proxy.seen("ReceiveMessage") for r in c.receipts]
    assert failed[0].receipts == (receipt,)
    later = {c.invocation for c in calls if c.at > failed[-1].at and c.status == 200 and c.receipts == (receipt,)}
    assert len(later) >= 2, f"the heartbeat stopped after the throttled call ({len(later)} beats after it)"
    assert "could not extend the delivery's visibility (ClientError" in worker.text()
    assert len(broker.completions()) == 1 and broker.read_dead() == []
    sim.assert_list_exact(3, seg.expected)


def test_a_delivery_whose_visibility_lapses_stops_sending_and_hands_its_run_on(
        tmp_path: Path, sim, make_sqs, workers, proxy: SqsFaultProxy) -> None:
    broker = _through(make_sqs(visibility_timeout=6), proxy)  # a beat every 2 s, lapsed after 6 s
    seg = make_segment(range(5000), invalid_rate=0.0, seed=4)  # 20 batches
    # the worker's own budget: ~1 bulk import a second, so the run would send for ~20 s
    worker = workers(write_config(tmp_path, sim, broker, rate_scale=0.6))
    proxy.fail(CMV, code="AccessDenied", status=403, forever=True)
    broker.publish(refreshed(write_jsonl(tmp_path / "snap" / "s.jsonl", seg.profiles), refresh_id="hb-2"))

    wait_for(lambda: "run interrupted at a checkpoint" in worker.text(), 90, "the run to stop at a checkpoint",
             check=worker.assert_alive)
    proxy.heal()
    broker.wait_completions(1, 180, check=worker.assert_alive)
    broker.wait_idle(60, check=worker.assert_alive)

    lines = [orjson.loads(line) for line in worker.text().splitlines() if line.startswith("{")]
    msgs = [line["msg"] for line in lines]
    lapsed = next(i for i, m in enumerate(msgs) if "could not be extended for" in m)
    stopped = msgs.index("run interrupted at a checkpoint; it resumes from its records")
    assert lapsed < stopped, "the run stopped before (or without) the lapse"
    # the first delivery stopped sending: the run that resumed after it still had batches to send
    assert any(line["msg"] == "run progress" and line.get("batches_sent", 0) > 0 for line in lines[stopped:]), \
        "nothing was left to send after the stop: the first delivery finished blind"
    assert "run handed on through a continuation" in msgs[stopped:]
    assert len(set(_received(proxy))) >= 2  # the original and a continuation
    assert len(broker.completions()) == 1 and broker.read_dead() == []
    assert len(sim.bulk_posts()) >= 20
    sim.assert_list_exact(3, seg.expected)


def test_a_hung_visibility_extension_does_not_stop_later_heartbeats(
        tmp_path: Path, sim, make_sqs, workers, proxy: SqsFaultProxy) -> None:
    broker = _through(make_sqs(visibility_timeout=15), proxy)  # a beat every 5 s
    sim.client.configure(processing_delay=25.0)  # the run waits ~25 s for its batches: several beats due
    seg = make_segment(range(600), invalid_rate=0.0, seed=5)
    worker = workers(write_config(tmp_path, sim, broker))
    proxy.hang(CMV)  # the first heartbeat's request is read and never answered
    broker.publish(refreshed(write_jsonl(tmp_path / "snap" / "s.jsonl", seg.profiles), refresh_id="hb-3"))

    broker.wait_completions(1, 150, check=worker.assert_alive)
    broker.wait_idle(60, check=worker.assert_alive)

    hung = proxy.hung(CMV)
    assert len(hung) == 1, "the hung call did not happen"
    [receipt] = [r for c in proxy.seen("ReceiveMessage") for r in c.receipts]
    assert hung[0].receipts == (receipt,)
    later = [c for c in proxy.seen(CMV) if c.at > hung[0].at and c.status == 200 and c.receipts == (receipt,)]
    assert len(later) >= 2, f"the heartbeat stopped at the hung call ({len(later)} beats after it)"
    assert len(_received(proxy)) == 1, "the message became visible again and was received a second time"
    assert "could not extend the delivery's visibility (" in worker.text()
    assert "could not be extended for" not in worker.text()  # recovered well inside the visibility timeout
    assert len(broker.completions()) == 1 and broker.read_dead() == []
    sim.assert_list_exact(3, seg.expected)
