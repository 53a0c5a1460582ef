"""Auth, rate limits, fault injection and storms, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable

from sim_support import Sim, wait_until


def _contacts(n: int, prefix: str = "c") -> list[dict[str, object]]:
    return [{"email": f"{prefix}{i}@example.com"} for i in range(n)]


def test_missing_key_is_401_and_wrong_key_is_403(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(api_keys=("k1", "k2"))
    missing = sim.call("GET", "lists", key=None)
    assert missing.status == 401 and isinstance(missing.body["message"], str)
    wrong = sim.call("GET", "lists", key="nope")
    assert wrong.status == 403 and isinstance(wrong.body["message"], str)
    assert sim.call("GET", "lists", key="k1").status == 200
    assert sim.call("GET", "lists", key="k2").status == 200
    # Both refusals are logged; /_sim needs no key.
    statuses = [r["status"] for r in sim.client.requests()]
    assert statuses == [401, 403, 200, 200]


def test_per_second_limit_answers_429_with_retry_after_and_headers(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim()  # AC's default: 5 requests per second
    replies = [sim.call("GET", "lists") for _ in range(5)]
    assert [r.status for r in replies] == [200] * 5
    assert [r.header("RateLimit-Remaining") for r in replies] == ["4", "3", "2", "1", "0"]
    assert all(r.header("RateLimit-Limit") == "5" for r in replies)
    limited = sim.call("GET", "lists")
    assert limited.status == 429
    retry_after = limited.header("Retry-After")
    assert retry_after is not None and retry_after.isdigit() and int(retry_after) >= 1
    assert limited.header("RateLimit-Limit") == "5" and limited.header("RateLimit-Remaining") == "0"
    stats = sim.client.stats()
    assert stats["rate_limited"] == 1 and stats["statuses"] == {"200": 5, "429": 1}


def test_refused_requests_do_not_consume_budget(make_sim: Callable[..., Sim]) -> None:
    # rate_scale 0.05: one request per 4 s window, so the hammering below lands inside the window
    # however slowly a loaded machine sends it.
    sim = make_sim(rate_scale=0.05)
    assert sim.call("GET", "lists").status == 200
    hammered = [sim.call("GET", "lists").status for _ in range(20)]
    assert set(hammered) == {429}
    # Refusals are not counted: once the first request leaves its window the budget is back. (If they
    # counted, every refused probe below would push it further away and the wait would time out.)
    probes: list[int] = []

    def admitted() -> bool:
        probes.append(sim.call("GET", "lists").status)
        return probes[-1] == 200

    wait_until(admitted, timeout=15.0, step=0.25)
    stats = sim.client.stats()
    assert stats["statuses"] == {"200": 2, "429": 20 + len(probes) - 1}


def test_bulk_per_minute_limit_is_a_400(make_sim: Callable[..., Sim]) -> None:
    # rate_scale 0.05: 5 multi-contact and 1 single-contact imports per minute; a big per-second budget.
    sim = make_sim(requests_per_second=1000, rate_scale=0.05, processing_delay=0.05)
    for i in range(5):
        assert sim.bulk(_contacts(2, prefix=f"m{i}-")).status == 200
    over = sim.bulk(_contacts(2, prefix="over-"))
    assert over.status == 400
    assert over.body["success"] == 0 and over.body["message"] == "Rate limit exceeded."
    assert isinstance(over.body["failureReasons"][0], str)
    assert over.body["failureReasons"][0].startswith("Up to 5 imports may be requested per minute.")
    # The single-contact window is separate.
    assert sim.bulk(_contacts(1, prefix="s1-")).status == 200
    single_over = sim.bulk(_contacts(1, prefix="s2-"))
    assert single_over.status == 400 and single_over.body["message"] == "Rate limit exceeded."
    stats = sim.client.stats()
    assert stats["bulk_rate_limited"] == 2 and stats["batches"]["accepted"] == 6


def test_error_rate_answers_5xx_before_doing_anything(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(error_rate=1.0, seed=7)
    replies = [sim.bulk(_contacts(3)) for _ in range(12)]
    assert {r.status for r in replies} <= {500, 502, 503}
    assert len({r.status for r in replies}) > 1  # a mix, as gateways produce
    assert sim.client.stats()["batches"]["accepted"] == 0
    assert sim.client.stats()["errors_injected"] == 12
    # Injected errors are not counted in the window: a full budget remains.
    sim.client.configure(error_rate=0.0)
    assert [sim.call("GET", "lists").status for _ in range(5)] == [200] * 5
    assert [r["status"] for r in sim.client.requests()][-5:] == [200] * 5


def test_storm_answers_429_to_everything_until_it_passes(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(requests_per_second=1000)
    assert sim.call("GET", "lists").status == 200
    sim.client.configure(storm_every=0.05, storm_duration=60.0)
    before: list[int] = []

    def stormy_now() -> bool:  # the storm starts storm_every after the knobs change
        before.append(sim.call("GET", "lists").status)
        return before[-1] == 429

    wait_until(stormy_now, timeout=5.0, step=0.02)
    stormy = [sim.call("GET", "lists") for _ in range(3)] + [sim.bulk(_contacts(2))]
    assert {r.status for r in stormy} == {429}
    assert all(int(r.header("Retry-After") or "0") >= 1 for r in stormy)
    assert sim.client.stats()["storm_limited"] == 4 + 1  # and the probe that saw it begin
    sim.client.configure(storm_every=0.0, storm_duration=0.0)
    assert sim.call("GET", "lists").status == 200


def test_latency_knob_delays_responses_without_breaking_them(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(latency=0.05)
    assert sim.call("GET", "lists").status == 200
    assert sim.client.requests()[0]["status"] == 200


def test_unknown_api_path_is_refused_as_not_simulated_and_counts(sim: Sim) -> None:
    reply = sim.call("GET", "nothing/here")
    assert reply.status == 501 and "GET /api/3/nothing/here" in reply.body["message"]
    assert reply.header("RateLimit-Limit") is not None
    assert sim.client.requests()[-1]["status"] == 501
    # A known path with a method the simulator does not serve is refused the same way.
    wrong_method = sim.call("PUT", "contacts/1", {"contact": {}})
    assert wrong_method.status == 501 and "PUT /api/3/contacts/1" in wrong_method.body["message"]
    assert sim.client.stats()["not_simulated"] == 2
