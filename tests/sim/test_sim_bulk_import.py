"""POST/GET import/bulk_import and import/info: limits, validation, lifecycle and per-contact outcomes."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from sim_support import Sim, wait_until

RANK = {False: 0, "waiting": 1, "claimed": 2, "active": 3, "completed": 4}


def _people(n: int, prefix: str = "p", **extra: Any) -> list[dict[str, Any]]:
    return [{"email": f"{prefix}{i}@example.com", **extra} for i in range(n)]


def test_accepts_250_contacts_and_refuses_251_with_nothing_queued(sim: Sim) -> None:
    ok = sim.bulk(_people(250))
    assert ok.status == 200
    assert ok.body["success"] == 1 and ok.body["queued_contacts"] == 250
    assert ok.body["message"] == "Contact import queued" and len(ok.body["batchId"]) == 36
    too_many = sim.bulk(_people(251, prefix="q"))
    assert too_many.status == 400 and too_many.body["success"] == 0
    assert too_many.body["message"].startswith("JSON payload did not pass validation.")
    assert sim.client.stats()["batches"]["accepted"] == 1


def _body_of_size(size: int) -> bytes:
    """A one-contact bulk body padded to exactly `size` bytes."""
    base = orjson.dumps({"contacts": [{"email": "pad@example.com", "first_name": ""}]})
    body = orjson.dumps({"contacts": [{"email": "pad@example.com", "first_name": "x" * (size - len(base))}]})
    assert len(body) == size
    return body


def test_body_byte_limit_is_measured_on_the_raw_body(sim: Sim) -> None:
    assert sim.call("POST", "import/bulk_import", raw=_body_of_size(399_999)).status == 200
    over = sim.call("POST", "import/bulk_import", raw=_body_of_size(400_000))
    assert over.status == 413 and over.body["success"] == 0 and "399,999" in over.body["message"]
    log = sim.client.requests()
    assert [entry["bytes"] for entry in log] == [399_999, 400_000]
    assert sim.client.stats()["batches"]["accepted"] == 1


def test_validation_rejects_the_whole_request_with_1_based_indexes(sim: Sim) -> None:
    contacts: list[Any] = [
        {"email": "good@example.com", "subscribe": [{"listid": 1}]},
        {"email": "not-an-email"},
        "just a string",
        {"email": "fine@example.com"},
        {"email": "typed@example.com", "first_name": 7},
        {"email": "bad-list@example.com", "subscribe": [{"listid": 999}]},
        {"email": "bad-field@example.com", "fields": [{"id": "x", "value": "v"}]},
        {"email": "bad-tags@example.com", "tags": "vip"},
        {"email": "bad@inv(alid).com@x"},
    ]
    reply = sim.bulk(contacts)
    assert reply.status == 400
    assert reply.body["success"] == 0
    assert reply.body["message"].startswith("JSON payload did not pass validation.")
    reasons = {r["contact"]: r["failureReason"] for r in reply.body["failureReasons"]}
    assert sorted(reasons) == [2, 3, 5, 6, 7, 8, 9]
    assert reasons[2] == "Field 'email' incorrect format"
    assert reasons[9] == "Field 'email' incorrect format"
    assert "first_name" in reasons[5] and "999" in reasons[6]
    stats = sim.client.stats()
    assert stats["batches"]["accepted"] == 0 and stats["contacts"] == 0
    assert sim.client.members(1) == {}


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"contacts": []}', b'{"contacts": {}}', b"{}"])
def test_malformed_envelopes_are_400(sim: Sim, body: bytes) -> None:
    reply = sim.call("POST", "import/bulk_import", raw=body)
    assert reply.status == 400 and reply.body["success"] == 0
    assert sim.client.stats()["batches"]["accepted"] == 0


def test_batch_lifecycle_and_outcome(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(requests_per_second=1000, processing_delay=0.6)
    sim.client.add_contact("known@example.com", first_name="Old", last_name="Name")
    reply = sim.bulk([
        {"email": "Known@Example.com", "first_name": "New", "subscribe": [{"listid": 2}]},
        {"email": "fresh1@example.com", "subscribe": [{"listid": 2}]},
        {"first_name": "No", "last_name": "Email"},
        {"email": "fresh2@example.com", "subscribe": [{"listid": 2}]},
    ])
    assert reply.status == 200 and reply.body["queued_contacts"] == 4
    batch_id = reply.body["batchId"]
    seen: list[Any] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        info = sim.call("GET", f"import/info?batchId={batch_id}").body
        seen.append(info["status"])
        if info["status"] == "completed":
            break
        assert info["success"] == [] and info["failure"] == []
        time.sleep(0.02)
    assert seen[-1] == "completed"
    ranks = [RANK[s] for s in seen]
    assert ranks == sorted(ranks), seen  # never goes backwards
    assert len(set(seen)) >= 2  # something before "completed" was observed

    members = sim.client.members(2)
    assert info["success"] == [members["fresh1@example.com"]["id"], members["fresh2@example.com"]["id"]]
    assert all(isinstance(i, str) for i in info["success"])
    assert info["failure"] == [""]
    assert members["known@example.com"]["first_name"] == "New"
    assert members["known@example.com"]["last_name"] == "Name"  # missing keys keep old values
    assert {m["status"] for m in members.values()} == {"subscribed"}


def test_import_info_errors(sim: Sim) -> None:
    missing = sim.call("GET", "import/info")
    assert missing.status == 400
    assert missing.body == {"success": 0, "message": "'batchId' is a required field."}
    unknown = sim.call("GET", "import/info?batchId=00000000-0000-4000-8000-000000000000")
    assert unknown.status == 404 and unknown.body["message"].startswith("No Result found for")


def test_fields_tags_and_unsubscribe_are_applied(sim: Sim) -> None:
    tier = sim.client.add_field("Loyalty tier", "dropdown", "LOYALTY_TIER", ["Gold", "Silver"])
    colors = sim.client.add_field("Colors", "listbox", "COLORS", ["Red", "Blue"])
    sim.client.add_contact("leaver@example.com", lists={1: "subscribed"}, tags=["old"])
    reply = sim.bulk([
        {"email": "fan@example.com", "phone": "+1 555", "tags": ["segment:vip", "Segment:VIP"],
         "fields": [{"id": tier, "value": "Gold"}, {"id": str(colors), "value": "||Red||Blue||"},
                    {"id": 999, "value": "ignored"}],
         "subscribe": [{"listid": "1"}], "exclude_automations": True, "customer_acct_name": "ACME"},
        {"email": "leaver@example.com", "tags": ["segment:vip"], "unsubscribe": [{"listid": 1}]},
    ])
    assert reply.status == 200
    sim.wait_batch(reply.body["batchId"])
    members = sim.client.members(1)
    fan = members["fan@example.com"]
    assert fan["fields"] == {"LOYALTY_TIER": "Gold", "COLORS": "||Red||Blue||"}
    assert fan["tags"] == ["segment:vip"]  # tag names match case-insensitively
    assert fan["phone"] == "+1 555"
    leaver = members["leaver@example.com"]
    assert leaver["status"] == "unsubscribed" and leaver["tags"] == ["old", "segment:vip"]
    assert sim.client.stats()["ignored_field_values"] == 1


def test_unsubscribed_contacts_are_skipped_and_never_resubscribed(sim: Sim) -> None:
    sim.client.add_contact("gone@example.com", lists={3: "subscribed"}, first_name="Gone")
    sim.client.unsubscribe("gone@example.com", 3)
    sim.client.unsubscribe("new-unsub@example.com", 3)  # created by the unsubscribe itself
    reply = sim.bulk([
        {"email": "gone@example.com", "first_name": "Changed", "subscribe": [{"listid": 1}, {"listid": 3}]},
        {"email": "NEW-UNSUB@example.com", "subscribe": [{"listid": 3}]},
        {"email": "stays@example.com", "subscribe": [{"listid": 3}]},
    ])
    info = sim.wait_batch(reply.body["batchId"])
    assert info["failure"] == ["gone@example.com", "NEW-UNSUB@example.com"]
    members = sim.client.members(3)
    assert members["gone@example.com"]["status"] == "unsubscribed"
    assert members["gone@example.com"]["first_name"] == "Gone"  # skipped entirely, not updated
    assert members["new-unsub@example.com"]["status"] == "unsubscribed"
    assert members["stays@example.com"]["status"] == "subscribed"
    assert "gone@example.com" not in sim.client.members(1)  # nor subscribed to the other list
    assert sim.client.stats()["resubscribed"] == 0
    reasons = sim.client.batch(reply.body["batchId"])["reasons"]
    assert reasons[0] == {"email": "gone@example.com", "reason": "unsubscribed from list 3"}


def test_exclusion_list_and_bounces_fail_contacts(sim: Sim) -> None:
    sim.client.exclude("blocked@example.com")
    sim.client.exclude("*@spam.example.org")
    sim.client.add_contact("bounced@example.com", bounced=True)
    reply = sim.bulk([
        {"email": "Blocked@example.com", "subscribe": [{"listid": 1}]},
        {"email": "anyone@spam.example.org", "subscribe": [{"listid": 1}]},
        {"email": "bounced@example.com", "subscribe": [{"listid": 1}]},
        {"email": "ok@example.com", "subscribe": [{"listid": 1}]},
    ])
    info = sim.wait_batch(reply.body["batchId"])
    assert info["failure"] == ["Blocked@example.com", "anyone@spam.example.org", "bounced@example.com"]
    assert list(sim.client.members(1)) == ["ok@example.com"]
    assert sim.client.contact("blocked@example.com") is None


def test_contact_limit_fails_new_contacts_only(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(requests_per_second=1000, processing_delay=0.02, contact_limit=3)
    sim.client.add_contact("existing@example.com")
    new = [{"email": f"n{i}@example.com", "subscribe": [{"listid": 1}]} for i in range(4)]
    update = {"email": "existing@example.com", "first_name": "Still", "subscribe": [{"listid": 1}]}
    reply = sim.bulk([*new, update])
    info = sim.wait_batch(reply.body["batchId"])
    assert len(info["success"]) == 2
    assert info["failure"] == ["n2@example.com", "n3@example.com"]
    assert sim.client.members(1)["existing@example.com"]["first_name"] == "Still"
    assert sim.client.stats()["contacts"] == 3


def test_batches_complete_in_acceptance_order(sim: Sim) -> None:
    first = sim.bulk([{"email": "same@example.com", "first_name": "First", "subscribe": [{"listid": 1}]}] * 2)
    sim.client.configure(processing_delay=0.0)
    second = sim.bulk([{"email": "same@example.com", "first_name": "Second"}] * 2)
    sim.wait_batch(second.body["batchId"])
    sim.wait_batch(first.body["batchId"])
    assert sim.client.members(1)["same@example.com"]["first_name"] == "Second"


def test_failed_batches(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(requests_per_second=1000, processing_delay=0.02, batch_failure_rate=1.0)
    reply = sim.bulk(_people(3))
    info = sim.wait_batch(reply.body["batchId"])
    assert info == {"status": "failed", "success": [], "failure": []}
    assert sim.client.stats()["contacts"] == 0 and sim.client.stats()["batches"]["failed"] == 1


def test_bulk_import_summary_counts_are_strings(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(requests_per_second=1000, processing_delay=30.0)
    sim.bulk(_people(3))
    sim.bulk(_people(2, prefix="x"))
    summary = sim.call("GET", "import/bulk_import").body
    assert summary["recentlyCompleted"] == []
    [row] = summary["outstanding"]
    assert row["batches"] == "2" and row["contacts"] == "5" and len(row["forDate"]) == 10
    fast = make_sim(requests_per_second=1000, processing_delay=0.0)
    sim_id = fast.bulk(_people(4)).body["batchId"]
    fast.wait_batch(sim_id)
    done = fast.call("GET", "import/bulk_import").body
    assert done["outstanding"] == []
    assert done["recentlyCompleted"][0]["batches"] == "1" and done["recentlyCompleted"][0]["contacts"] == "4"


class _Recorder(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, str, dict[str, str], bytes]] = []  # noqa: RUF012 - shared by design

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.received.append((self.command, self.path, dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    do_GET = _record
    do_POST = _record

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def callback_url() -> Iterator[str]:
    _Recorder.received = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_callback_is_called_when_a_batch_completes(sim: Sim, callback_url: str) -> None:
    sim.client.exclude("nope@example.com")
    reply = sim.bulk([{"email": "yes@example.com"}, {"email": "nope@example.com"}], callback={
        "url": callback_url, "requestType": "POST", "detailed_results": "true",
        "params": [{"key": "run", "value": "r1"}], "headers": [{"key": "X-Run", "value": "r1"}],
    })
    batch_id = reply.body["batchId"]
    wait_until(lambda: len(_Recorder.received) == 1)
    method, path, headers, body = _Recorder.received[0]
    assert method == "POST" and path == "/hook" and headers.get("X-Run") == "r1"
    payload = orjson.loads(body)
    assert payload["batchId"] == batch_id and payload["status"] == "completed" and payload["run"] == "r1"
    assert payload["success"] == 1 and payload["failure"] == 1
    assert sim.client.stats()["callbacks"] == {"sent": 1, "failed": 0}

    get_reply = sim.bulk([{"email": "g@example.com"}], callback={"url": callback_url, "requestType": "GET"})
    wait_until(lambda: len(_Recorder.received) == 2)
    method, path, _, _ = _Recorder.received[1]
    assert method == "GET" and f"batchId={get_reply.body['batchId']}" in path


def test_malformed_callback_is_a_validation_error(sim: Sim) -> None:
    reply = sim.bulk([{"email": "a@example.com"}], callback={"requestType": "POST"})
    assert reply.status == 400 and sim.client.stats()["batches"]["accepted"] == 0
