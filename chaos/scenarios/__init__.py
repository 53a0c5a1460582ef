"""The scenarios, in the order the table lists them. Each is ``run(stage)``: it builds its world on the
stage, drives the worker through one kind of trouble, and records what must hold at the end (the people
expected on each list, the runs and what their one completion event must say, scenario-specific checks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chaos.scenarios import activecampaign, crash, damaged, guard, malformed, outages, reentry, sweep
from chaos.stage import Stage


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Stage], None]
    about: str


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("kill9-planning", crash.kill_while_planning, "kill -9 while planning, restart, resume"),
    Scenario("kill9-sending", crash.kill_while_sending, "kill -9 while sending, restart, resume"),
    Scenario("kill9-confirming", crash.kill_while_confirming, "kill -9 while confirming, restart, resume"),
    Scenario("rabbitmq-outage", outages.rabbitmq_outage, "RabbitMQ unreachable mid-run (proxy cut), then back"),
    Scenario("s3-outage", outages.s3_outage, "S3 unreachable mid-run (proxy cut), then back"),
    Scenario("ac-5xx-429-latency", activecampaign.faults_storms_latency, "10% 5xx, 429 storms, 1 s latency"),
    Scenario("ac-outage", activecampaign.outage, "ActiveCampaign down (error_rate 1.0) mid-run, then back"),
    Scenario("empty-snapshot", guard.empty_snapshot, "empty, then truncated snapshot: the removal guard trips"),
    Scenario("damaged-snapshot", damaged.damaged_snapshots,
             "an open quote at 85%, a JSON Lines file and a gzip part cut short: fail before any request"),
    Scenario("leavers-return", reentry.leavers_return, "5% of leavers re-admitted, 1% self-unsubscribed kept out"),
    Scenario("malformed-events", malformed.malformed_events, "1,000 malformed events among valid ones"),
    Scenario("protocol-sweep", sweep.protocol_sweep, "random histories of runs with several crashes and lost "
                                                     "answers (the run protocol, issue 15)"),
)

BY_NAME = {s.name: s for s in SCENARIOS}
