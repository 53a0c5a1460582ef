"""ActiveCampaignClient against a scripted server over real HTTP: retries, parsing, secrecy."""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import AsyncIterator

import pytest

from worker.activecampaign.client import ActiveCampaignClient, ActiveCampaignError
from worker.privacy.secret import Secret

from .scripted import FakeLimiter, Reply, ScriptedAC

KEY = "unit-key-7f3a9c-DO-NOT-LEAK"
ACCEPTED = {"success": 1, "queued_contacts": 3, "batchId": "b-1", "message": "Contact import queued"}


def contacts(n: int) -> list[dict[str, str]]:
    return [{"email": f"person{i}@example.com"} for i in range(n)]


@pytest.fixture
async def ac() -> AsyncIterator[ScriptedAC]:
    async with ScriptedAC() as server:
        yield server


def make_client(url: str, limiter: FakeLimiter | None = None, **kwargs: object) -> ActiveCampaignClient:
    options: dict[str, object] = {"retry_base": 0.001, "retry_cap": 0.01, "rng": random.Random(1)}
    options.update(kwargs)
    return ActiveCampaignClient(url, Secret(KEY), limiter or FakeLimiter(), **options)  # type: ignore[arg-type]


def assert_no_key(*texts: str) -> None:
    for text in texts:
        assert KEY not in text


async def test_bulk_import_sends_the_key_header_and_one_body(ac: ScriptedAC) -> None:
    ac.on(
        "POST",
        "import/bulk_import",
        Reply(200, {k if k != "success" else "Success": v for k, v in ACCEPTED.items()}),
    )
    limiter = FakeLimiter()
    seen: list[tuple[str, int]] = []
    async with make_client(
        ac.url + "/", limiter, on_request=lambda label, status, _s: seen.append((label, status))
    ) as client:
        result = await client.bulk_import(contacts(3))
    assert result.batch_id == "b-1" and result.rejected == {}
    (request,) = ac.sent("POST", "import/bulk_import")
    assert request["headers"]["Api-Token"] == KEY
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["body"] == {"contacts": contacts(3)}
    assert limiter.kinds == ["bulk"]
    assert seen == [("import/bulk_import", 200)]


async def test_429_backs_the_whole_account_off_and_retries(ac: ScriptedAC) -> None:
    ac.on(
        "POST",
        "import/bulk_import",
        Reply(429, {"message": "slow"}, {"Retry-After": "2"}),
        Reply(200, ACCEPTED),
    )
    limiter = FakeLimiter()
    async with make_client(ac.url, limiter) as client:
        assert (await client.bulk_import(contacts(3))).batch_id == "b-1"
    assert limiter.backoffs == [2.0]
    assert limiter.kinds == ["bulk", "bulk"]


async def test_bulk_rate_limit_400_pauses_one_bulk_interval_and_retries(ac: ScriptedAC) -> None:
    limited = {
        "success": 0,
        "message": "Rate limit exceeded.",
        "failureReasons": ["Up to 100 imports may be requested per minute. Please batch contacts."],
    }
    ac.on("POST", "import/bulk_import", Reply(400, limited), Reply(200, ACCEPTED))
    limiter = FakeLimiter()
    async with make_client(ac.url, limiter) as client:
        assert (await client.bulk_import(contacts(3))).batch_id == "b-1"
    assert limiter.backoffs == [pytest.approx(0.6)]


async def test_server_errors_are_retried_with_bounded_attempts(
    ac: ScriptedAC, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ac.on(
        "POST",
        "import/bulk_import",
        Reply(502, b"<html>502 Bad Gateway</html>"),
        Reply(503, b"<html/>"),
        Reply(200, ACCEPTED),
    )
    async with make_client(ac.url) as client:
        assert (await client.bulk_import(contacts(3))).batch_id == "b-1"
    assert len(ac.sent("POST", "import/bulk_import")) == 3

    ac.on("GET", "import/info", Reply(500, {"message": "boom"}))
    statuses: list[int] = []
    async with make_client(ac.url, max_retries=2, on_request=lambda _l, s, _t: statuses.append(s)) as client:
        with pytest.raises(ActiveCampaignError) as caught:
            await client.import_info("b-1")
    assert caught.value.code == "server_error" and caught.value.status == 500
    assert statuses == [500, 500, 500]
    assert_no_key(str(caught.value), repr(caught.value), caplog.text)


async def test_timeouts_and_refused_connections_become_typed_errors(
    ac: ScriptedAC, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ac.on("GET", "import/info", Reply(200, {"status": "completed"}, delay=1.0))
    async with make_client(ac.url, timeout=0.1, max_retries=1) as client:
        with pytest.raises(ActiveCampaignError) as caught:
            await client.import_info("b-1")
    assert caught.value.code == "timeout"

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    statuses: list[int] = []
    async with make_client(
        f"http://127.0.0.1:{port}", max_retries=1, on_request=lambda _l, st, _t: statuses.append(st)
    ) as client:
        with pytest.raises(ActiveCampaignError) as refused:
            await client.check_key()
    assert refused.value.code == "network" and statuses == [0, 0]
    assert_no_key(str(caught.value), str(refused.value), repr(refused.value), caplog.text)


async def test_validation_400_drops_named_contacts_and_resends_the_rest(ac: ScriptedAC) -> None:
    invalid = {
        "success": 0,
        "message": "JSON payload did not pass validation.",
        "failureReasons": [
            {"contact": 2, "failureReason": "Field 'email' incorrect format"},
            {"contact": 4, "failureReason": "Field 'email' incorrect format"},
        ],
    }
    second = {
        "success": 0,
        "message": "JSON payload did not pass validation.",
        "failureReasons": [{"contact": 1, "failureReason": "Field 'phone' too long"}],
    }
    ac.on("POST", "import/bulk_import", Reply(400, invalid), Reply(400, second), Reply(200, ACCEPTED))
    batch = contacts(5)
    batch[1]["email"] = "bad@@x"
    batch[3]["email"] = "also bad"
    async with make_client(ac.url) as client:
        result = await client.bulk_import(batch)
    assert result.batch_id == "b-1"
    assert result.rejected == {
        1: "Field 'email' incorrect format",
        3: "Field 'email' incorrect format",
        0: "Field 'phone' too long",
    }
    bodies = [r["body"]["contacts"] for r in ac.sent("POST", "import/bulk_import")]
    assert [len(b) for b in bodies] == [5, 3, 2]
    assert bodies[2] == [batch[2], batch[4]]


async def test_zero_based_indexes_are_recognised_by_the_email_rule(ac: ScriptedAC) -> None:
    zero_based = {
        "success": 0,
        "failureReasons": [{"contact": 2, "failureReason": "Field 'email' incorrect format"}],
    }
    ac.on("POST", "import/bulk_import", Reply(400, zero_based), Reply(200, ACCEPTED))
    batch = contacts(4)
    batch[2]["email"] = "no-at-sign"  # index 2 is the bad one, so AC must have counted from 0
    async with make_client(ac.url) as client:
        result = await client.bulk_import(batch)
    assert result.rejected == {2: "Field 'email' incorrect format"}


async def test_every_contact_refused_means_no_batch(ac: ScriptedAC) -> None:
    refused = {
        "success": 0,
        "failureReasons": [{"contact": 1, "failureReason": "Field 'email' incorrect format"}],
    }
    ac.on("POST", "import/bulk_import", Reply(400, refused))
    async with make_client(ac.url) as client:
        result = await client.bulk_import([{"email": "x"}])
    assert result.batch_id is None and result.rejected == {0: "Field 'email' incorrect format"}


async def test_other_4xx_and_odd_200s_raise_without_resending(ac: ScriptedAC) -> None:
    ac.on("POST", "import/bulk_import", Reply(400, {"success": 0, "message": "Something else is wrong"}))
    async with make_client(ac.url) as client:
        with pytest.raises(ActiveCampaignError) as caught:
            await client.bulk_import(contacts(2))
        assert caught.value.code == "bad_request" and "Something else is wrong" in str(caught.value)
        ac.on("POST", "import/bulk_import", Reply(200, {"success": 1}))
        with pytest.raises(ActiveCampaignError) as odd:
            await client.bulk_import(contacts(2))
    assert odd.value.code == "bad_response"
    assert len(ac.sent("POST", "import/bulk_import")) == 2  # one each: a 200 is never resent


async def test_oversized_requests_are_the_callers_bug(ac: ScriptedAC) -> None:
    async with make_client(ac.url) as client:
        with pytest.raises(ValueError, match="at most 250"):
            await client.bulk_import(contacts(251))
        with pytest.raises(ValueError, match="399999"):
            await client.bulk_import(
                [{"email": f"p{i}@example.com", "first_name": "x" * 2000} for i in range(250)]
            )
        with pytest.raises(ValueError):
            await client.bulk_import([])
    assert ac.requests == []


async def test_import_info_parses_every_stage(ac: ScriptedAC) -> None:
    ac.on(
        "GET",
        "import/info",
        Reply(200, {"status": False, "success": [], "failure": []}),
        Reply(200, {"status": "active"}),
        Reply(200, {"status": "completed", "success": [123, "124"], "failure": ["Bad@Example.com"]}),
    )
    async with make_client(ac.url) as client:
        first = await client.import_info("b-1")
        second = await client.import_info("b-1")
        done = await client.import_info("b-1")
        ac.on("GET", "import/info", Reply(404, {"message": "No Result found for Import with id b-9"}))
        with pytest.raises(ActiveCampaignError) as missing:
            await client.import_info("b-9")
    assert (first.status, first.final) == (False, False)
    assert (second.status, second.final) == ("active", False)
    assert done.final and done.success_ids == ["123", "124"] and done.failure_emails == ["Bad@Example.com"]
    assert ac.sent("GET", "import/info")[0]["query"] == {"batchId": "b-1"}
    assert missing.value.code == "not_found"


async def test_unsubscribed_lookup_asks_one_exact_question(ac: ScriptedAC) -> None:
    ac.on(
        "GET",
        "contacts",
        Reply(200, {"contacts": [{"id": "5", "email": "a+b@example.com"}], "meta": {"total": "1"}}),
        Reply(200, {"contacts": [{"id": "6", "email": "xa+b@example.com"}], "meta": {"total": "1"}}),
        Reply(200, {"contacts": [], "meta": {"total": "0"}}),
    )
    limiter = FakeLimiter()
    async with make_client(ac.url, limiter) as client:
        assert await client.unsubscribed_from_list("A+B@example.com", 3) is True
        assert await client.unsubscribed_from_list("a+b@example.com", 3) is False  # a "contains" match only
        assert await client.unsubscribed_from_list("a+b@example.com", 3) is False
    assert ac.sent("GET", "contacts")[0]["query"] == {
        "email": "A+B@example.com",
        "listid": "3",
        "status": "2",
    }
    assert limiter.kinds == ["other"] * 3


async def test_get_list_and_permission_errors(ac: ScriptedAC) -> None:
    ac.on("GET", "lists/3", Reply(200, {"list": {"id": "3", "name": "VIP"}}))
    ac.on(
        "GET",
        "lists/4",
        Reply(
            403,
            {
                "errors": [
                    {
                        "status": 403,
                        "title": "Forbidden",
                        "detail": "You do not have permission to view lists.",
                    }
                ]
            },
        ),
    )
    async with make_client(ac.url) as client:
        assert (await client.get_list(3)) == {"id": "3", "name": "VIP"}
        assert await client.get_list(7) is None
        with pytest.raises(ActiveCampaignError) as forbidden:
            await client.get_list(4)
    assert forbidden.value.code == "forbidden"


async def test_custom_fields_reads_every_page(ac: ScriptedAC) -> None:
    fields = [{"id": str(i), "title": f"F{i}", "perstag": f"F{i}"} for i in range(1, 251)]
    ac.on(
        "GET",
        "fields",
        *(Reply(200, {"fields": fields[o : o + 100], "meta": {"total": "250"}}) for o in (0, 100, 200)),
    )
    async with make_client(ac.url) as client:
        assert await client.custom_fields() == fields
    assert [r["query"] for r in ac.sent("GET", "fields")] == [
        {"limit": "100", "offset": "0"},
        {"limit": "100", "offset": "100"},
        {"limit": "100", "offset": "200"},
    ]


@pytest.mark.parametrize(
    ("status", "body"), [(401, {"message": "missing"}), (403, {"message": f"bad key {KEY}"})]
)
async def test_check_key_reports_auth_without_the_key(
    ac: ScriptedAC, status: int, body: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ac.on("GET", "lists", Reply(status, body))
    client = make_client(ac.url)
    async with client:
        with pytest.raises(ActiveCampaignError) as caught:
            await client.check_key()
    assert caught.value.code == "auth"
    assert_no_key(str(caught.value), repr(caught.value), repr(client), caplog.text)


async def test_rate_limited_answers_are_bounded_too(ac: ScriptedAC) -> None:
    ac.on("GET", "lists", Reply(429, {"message": "slow"}, {"Retry-After": "0"}))
    async with make_client(ac.url, max_rate_limited=3) as client:
        with pytest.raises(ActiveCampaignError) as caught:
            await client.check_key()
    assert caught.value.code == "rate_limited"
    assert len(ac.sent("GET", "lists")) == 4


def test_base_url_is_normalised_and_checked() -> None:
    limiter = FakeLimiter()
    for base in ("https://acct.api-us1.com", "https://acct.api-us1.com/", "https://acct.api-us1.com/api/3/"):
        assert (
            repr(ActiveCampaignClient(base, Secret(KEY), limiter))
            == "ActiveCampaignClient('https://acct.api-us1.com/api/3/')"
        )
    with pytest.raises(ValueError):
        ActiveCampaignClient("acct.api-us1.com", Secret(KEY), limiter)
    with pytest.raises(TypeError):
        ActiveCampaignClient("https://acct.api-us1.com", KEY, limiter)  # type: ignore[arg-type]


async def test_a_rate_limited_one_contact_import_waits_alone(ac: ScriptedAC) -> None:
    limited = {
        "success": 0,
        "message": "Rate limit exceeded.",
        "failureReasons": ["Up to 1 single-contact imports may be requested per 0.02 seconds."],
    }
    ac.on("POST", "import/bulk_import", Reply(400, limited), Reply(200, ACCEPTED))
    limiter = FakeLimiter()
    async with make_client(ac.url, limiter) as client:
        assert (await client.bulk_import(contacts(1))).batch_id == "b-1"
    assert limiter.backoffs == []  # nobody else was held up
    assert limiter.kinds == ["bulk", "bulk"]
