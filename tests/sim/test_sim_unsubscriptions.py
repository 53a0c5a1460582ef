"""Both kinds of unsubscription (issue 8 §2), the contact-list record in AC's shape, and re-subscribing.

The list record is what a client reads to tell an unsubscription made through the API (no campaign,
message, unsubreason or unsubscribeAutomation) from the person's own; these tests read it over HTTP as a
client would, and through `SimClient.contact_list`, and check that both agree.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sim_support import Sim

from worker.sim import SimClientError

#: The keys of a record in AC's `GET /contacts/{id}/contactLists` example (OpenAPI reference).
AC_CONTACT_LIST_KEYS = {
    "contact", "list", "form", "seriesid", "sdate", "udate", "status", "responder", "sync", "unsubreason",
    "campaign", "message", "first_name", "last_name", "ip4Sub", "sourceid", "autosyncLog", "ip4_last",
    "ip4Unsub", "created_timestamp", "updated_timestamp", "created_by", "updated_by", "unsubscribeAutomation",
    "links", "id", "automation",
}
WHOSE = ("campaign", "message", "unsubreason", "unsubscribeAutomation")
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
PLAIN = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def _records(sim: Sim, email: str) -> list[dict[str, Any]]:
    contact_id = (sim.client.contact(email) or {})["id"]
    reply = sim.call("GET", f"contacts/{contact_id}/contactLists")
    assert reply.status == 200, reply
    assert list(reply.body) == ["contactLists"]
    records: list[dict[str, Any]] = reply.body["contactLists"]
    return records


def _record(sim: Sim, email: str, list_id: int) -> dict[str, Any]:
    found = [r for r in _records(sim, email) if r["list"] == str(list_id)]
    assert len(found) == 1, found
    assert sim.client.contact_list(email, list_id) == found[0]  # the helper shows the same record
    return found[0]


def _resubscribe(sim: Sim, email: str, list_id: int, **extra: Any) -> Any:
    contact_id = (sim.client.contact(email) or {})["id"]
    return sim.call("POST", "contactLists",
                    {"contactList": {"list": list_id, "contact": contact_id, "status": 1, **extra}})


def test_record_has_acs_keys_types_and_timestamps(sim: Sim) -> None:
    sim.client.freeze_time("2024-05-01T10:00:00Z")
    sim.client.add_contact("ann@example.com", lists={1: "subscribed"}, first_name="Ann", last_name="Lee")
    record = _record(sim, "ann@example.com", 1)
    assert set(record) == AC_CONTACT_LIST_KEYS
    assert record["status"] == "1" and record["list"] == "1" and record["id"] == "1"
    assert record["contact"] == (sim.client.contact("ann@example.com") or {})["id"]
    assert (record["first_name"], record["last_name"]) == ("Ann", "Lee")
    assert record["sdate"] == record["udate"] == "2024-05-01T10:00:00+00:00"
    assert record["created_timestamp"] == record["updated_timestamp"] == "2024-05-01 10:00:00"
    assert all(record[key] is None for key in WHOSE)
    assert record["sourceid"] == "0"
    assert record["links"]["contact"] == f"{sim.url}/api/3/contactLists/1/contact"
    missing = sim.call("GET", "contacts/999/contactLists")
    assert missing.status == 404 and missing.body == {"message": "No Result found for Subscriber with id 999"}
    assert sim.client.contact_list("ann@example.com", 2) is None
    assert sim.client.contact_list("nobody@example.com", 1) is None


@pytest.mark.parametrize(("how", "expected"), [
    ("campaign", {"campaign": "1", "message": "1"}),
    ("form", {"unsubreason": "I no longer want to receive these emails."}),
    ("automation", {"unsubscribeAutomation": "1"}),
    ("api", {}),
])
def test_unsubscribe_records_whose_it_was(sim: Sim, how: str, expected: dict[str, str]) -> None:
    sim.client.freeze_time("2024-05-01T10:00:00Z")
    sim.client.add_contact("p@example.com", lists={1: "subscribed"})
    sim.client.freeze_time("2024-05-02T11:30:00Z")
    sim.client.unsubscribe("p@example.com", 1, how=how)  # type: ignore[arg-type]
    record = _record(sim, "p@example.com", 1)
    assert record["status"] == "2"
    assert {key: record[key] for key in WHOSE} == {key: expected.get(key) for key in WHOSE}
    assert record["sdate"] == "2024-05-01T10:00:00+00:00"  # when it was subscribed
    assert record["udate"] == "2024-05-02T11:30:00+00:00"  # when it last changed
    assert record["created_timestamp"] == "2024-05-01 10:00:00"
    assert record["updated_timestamp"] == "2024-05-02 11:30:00"
    assert sim.client.members(1)["p@example.com"]["status"] == "unsubscribed"


def test_unsubscribe_defaults_to_the_persons_own_through_a_campaign(sim: Sim) -> None:
    sim.client.unsubscribe("x@example.com", 2)  # creates the contact, as before
    record = sim.client.contact_list("x@example.com", 2) or {}
    assert record["status"] == "2" and (record["campaign"], record["message"]) == ("1", "1")
    with pytest.raises(SimClientError, match="how"):
        sim.client.unsubscribe("x@example.com", 2, how="telepathy")  # type: ignore[arg-type]


def test_unsubscriptions_made_through_the_api_leave_the_fields_null(sim: Sim) -> None:
    sim.client.add_contact("bulk@example.com", lists={1: "subscribed"})
    sim.client.add_contact("single@example.com", lists={1: "subscribed"})
    reply = sim.bulk([{"email": "bulk@example.com", "unsubscribe": [{"listid": 1}]},
                      {"email": "new@example.com", "unsubscribe": [{"listid": 1}]}])
    sim.wait_batch(reply.body["batchId"])
    contact_id = (sim.client.contact("single@example.com") or {})["id"]
    posted = sim.call("POST", "contactLists", {"contactList": {"list": 1, "contact": contact_id, "status": 2}})
    assert posted.status == 200 and posted.body["contactList"]["status"] == 2
    for email in ("bulk@example.com", "new@example.com", "single@example.com"):
        record = _record(sim, email, 1)
        assert record["status"] == "2", email
        assert all(record[key] is None for key in WHOSE), (email, record)


def test_post_contact_lists_resubscribes_records_sourceid_and_counts_whose(sim: Sim) -> None:
    for email in ("ours@example.com", "theirs@example.com"):
        sim.client.add_contact(email, lists={3: "subscribed"})
    sim.client.unsubscribe("ours@example.com", 3, how="api")
    sim.client.unsubscribe("theirs@example.com", 3, how="form")

    ours = _resubscribe(sim, "ours@example.com", 3, sourceid=4)
    assert ours.status == 200
    assert ours.body["contactList"]["status"] == 1 and ours.body["contactList"]["sourceid"] == "4"
    assert sim.client.stats()["resubscribed"] == 1 and sim.client.stats()["resubscribed_own"] == 0

    # AC lets an API client re-subscribe someone who unsubscribed themselves: the simulator does too,
    # and counts it separately so consent tests can assert it never happens.
    theirs = _resubscribe(sim, "theirs@example.com", 3, sourceid="4")
    assert theirs.status == 200
    stats = sim.client.stats()
    assert stats["resubscribed"] == 2 and stats["resubscribed_own"] == 1

    record = _record(sim, "theirs@example.com", 3)
    assert record["status"] == "1" and record["sourceid"] == "4"
    assert all(record[key] is None for key in WHOSE)  # the record shows the current subscription

    bad = _resubscribe(sim, "ours@example.com", 3, sourceid="four")
    assert bad.status == 422 and bad.body["errors"][0]["source"]["pointer"] == "/data/attributes/sourceid"


def test_setting_the_status_a_record_has_changes_nothing(sim: Sim) -> None:
    sim.client.freeze_time("2024-05-01T10:00:00Z")
    sim.client.add_contact("same@example.com", lists={1: "subscribed"})
    sim.client.freeze_time("2024-06-01T10:00:00Z")
    again = _resubscribe(sim, "same@example.com", 1)
    assert again.status == 200
    record = _record(sim, "same@example.com", 1)
    assert record["updated_timestamp"] == "2024-05-01 10:00:00"
    assert sim.client.stats()["resubscribed"] == 0


def test_subscribing_an_excluded_address_through_contact_lists_is_refused(sim: Sim) -> None:
    sim.client.add_contact("blocked@example.com", lists={1: "subscribed"})
    sim.client.unsubscribe("blocked@example.com", 1, how="api")
    sim.client.exclude("*@example.com")
    refused = _resubscribe(sim, "blocked@example.com", 1, sourceid=4)
    assert refused.status == 422
    assert refused.body["errors"][0]["code"] == "email_excluded"
    assert _record(sim, "blocked@example.com", 1)["status"] == "2"
    assert sim.client.stats()["resubscribed"] == 0
    # Unsubscribing an excluded address is fine.
    sim.client.add_contact("other@example.com", lists={2: "subscribed"})
    contact_id = (sim.client.contact("other@example.com") or {})["id"]
    out = sim.call("POST", "contactLists", {"contactList": {"list": 2, "contact": contact_id, "status": 2}})
    assert out.status == 200


def test_bulk_import_still_never_resubscribes_either_kind(sim: Sim) -> None:
    sim.client.add_contact("api-left@example.com", lists={1: "subscribed"})
    sim.client.unsubscribe("api-left@example.com", 1, how="api")
    sim.client.unsubscribe("self-left@example.com", 1, how="campaign")
    reply = sim.bulk([{"email": "api-left@example.com", "subscribe": [{"listid": 1}]},
                      {"email": "self-left@example.com", "subscribe": [{"listid": 1}]}])
    info = sim.wait_batch(reply.body["batchId"])
    assert info["failure"] == ["api-left@example.com", "self-left@example.com"]
    assert {r["status"] for r in (_record(sim, "api-left@example.com", 1),
                                  _record(sim, "self-left@example.com", 1))} == {"2"}
    assert sim.client.stats()["resubscribed"] == 0


def test_contact_lists_are_side_loaded_with_the_contact(sim: Sim) -> None:
    sim.client.add_contact("two@example.com", lists={1: "subscribed", 4: "subscribed"})
    sim.client.unsubscribe("two@example.com", 4, how="automation")
    contact_id = (sim.client.contact("two@example.com") or {})["id"]
    body = sim.call("GET", f"contacts/{contact_id}").body
    assert [(r["list"], r["status"], r["unsubscribeAutomation"]) for r in body["contactLists"]] == [
        ("1", "1", None), ("4", "2", "1")]
    assert body["contact"]["contactLists"] == [r["id"] for r in body["contactLists"]]
    assert body["contactLists"] == _records(sim, "two@example.com")
    for record in body["contactLists"]:
        assert ISO.match(record["sdate"]) and ISO.match(record["udate"])
        assert PLAIN.match(record["created_timestamp"]) and PLAIN.match(record["updated_timestamp"])
