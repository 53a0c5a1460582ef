"""Must show 1 (issue 9): three `segment-export run` replicas sharing RabbitMQ and Redis keep two accounts
within their budgets together and use them: six exports on one account, three on another, each simulator
at 20x AC's budget.

Asserted: every list exact, one completion per export, each export run once, both accounts' work spread
over the replicas, no replica fell back to its local share, refused requests under 0.5% of requests.
The bulk pace is printed, not asserted: at this size an account is busy for ten seconds or so on a
2-core machine shared with other test runs, and that span measures the machine as much as the limiter.
The issue's 90% of the ceiling is checked at full size by bench/replicas_bench.py (speed lives in bench/).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.replicas.pace import REPLICAS, run_pace_scenario

#: Contacts in each of the first account's six exports (the second's three are twice as large): 480 bulk
#: imports per account, about 15 s of budget each.
PEOPLE = 20_000
REFUSAL_CEILING = 0.005


@pytest.mark.slow
def test_three_replicas_share_two_accounts_budgets(tmp_path: Path, rabbit_delays, redis_url: str, accounts,
                                                   workers, shared_redis_keys) -> None:
    result = run_pace_scenario(tmp_path, rabbit_delays, redis_url, accounts, workers, people_per_a_export=PEOPLE,
                               timeout=600, note_redis=shared_redis_keys)
    print("\n" + result.report())

    for e in result.exports:
        e.account.assert_list_exact(e.list_id, e.segment.expected)
        done = result.completions.of(e.name)
        assert len(done) == 1, (e.name, done)
        assert done[0]["status"] == "succeeded", done[0]
        assert done[0]["counts"]["added"] == len(e.segment.expected) and done[0]["counts"]["failed"] == 0
        assert sum(result.runs_by_replica[e.name].values()) == 1, (e.name, result.runs_by_replica[e.name])
    assert rabbit_delays.read_dead() == []

    for account in result.accounts:
        ran_on = {i for e in result.exports if e.account is account for i in result.runs_by_replica[e.name]}
        assert len(ran_on) >= 2, f"{account.connection}'s exports all ran on replica {ran_on}: nothing was shared"
    for r in result.replicas:
        assert r.logged("pacing to this replica's share") == [], "a replica fell back to its local share"
        for account in result.accounts:
            assert r.metric("segment_export_limiter_degraded", connection=account.connection) == 0

    for f in result.figures:
        assert f.posts == sum(e.batches for e in result.exports if e.account.connection == f.connection)
        assert f.refused < REFUSAL_CEILING * f.requests, f.line()
    assert len(result.replicas) == REPLICAS
