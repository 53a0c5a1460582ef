"""The simulator as a sandbox for any ActiveCampaign client (issue 11): the token check, timestamps,
incremental reads of contacts, the read-only collections, and loud refusal of what is not simulated."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from sim_support import Sim

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
PLAIN = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def _emails(body: dict[str, Any]) -> list[str]:
    return [c["email"] for c in body["contacts"]]


def test_api_root_answers_a_valid_token(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(api_keys=("k1",))
    for path in ("/api/3/", "/api/3"):
        ok = sim.call("GET", path, key="k1")
        assert ok.status == 200 and ok.header("Content-Type") == "application/json"
        assert ok.body["version"] == "3"
        assert sim.call("GET", path, key=None).status == 401
        assert sim.call("GET", path, key="wrong").status == 403
    assert [r["status"] for r in sim.client.requests()] == [200, 401, 403] * 2


def test_contacts_lists_and_links_carry_acs_timestamps(sim: Sim) -> None:
    sim.client.freeze_time("2024-05-01T10:00:00Z")
    tier = sim.client.add_field("Tier", "text", "TIER")
    created = sim.call("POST", "contact/sync", {"contact": {"email": "t@example.com", "firstName": "T",
                                                            "fieldValues": [{"field": tier, "value": "Gold"}]}})
    contact = created.body["contact"]
    assert contact["cdate"] == contact["udate"] == "2024-05-01T10:00:00+00:00"
    assert contact["created_timestamp"] == contact["updated_utc_timestamp"] == "2024-05-01 10:00:00"
    assert created.body["fieldValues"][0]["cdate"] == "2024-05-01T10:00:00+00:00"

    # A change moves udate; the same data again does not.
    sim.client.freeze_time("2024-05-03T08:15:00Z")
    same = sim.call("POST", "contact/sync", {"contact": {"email": "t@example.com", "firstName": "T"}})
    assert same.body["contact"]["udate"] == "2024-05-01T10:00:00+00:00"
    changed = sim.call("POST", "contact/sync", {"contact": {"email": "t@example.com",
                                                            "fieldValues": [{"field": tier, "value": "Silver"}]}})
    assert changed.body["contact"]["udate"] == "2024-05-03T08:15:00+00:00"
    assert changed.body["contact"]["cdate"] == "2024-05-01T10:00:00+00:00"
    value = changed.body["fieldValues"][0]
    assert (value["cdate"], value["udate"]) == ("2024-05-01T10:00:00+00:00", "2024-05-03T08:15:00+00:00")

    listed = sim.call("GET", "lists/1").body["list"]
    assert ISO.match(listed["cdate"]) and ISO.match(listed["udate"])
    assert PLAIN.match(listed["created_timestamp"]) and PLAIN.match(listed["updated_timestamp"])
    sim.client.configure(lists={1: "Renamed", 2: "Customers"})
    renamed = sim.call("GET", "lists/1").body["list"]
    assert renamed["name"] == "Renamed" and renamed["udate"] == "2024-05-03T08:15:00+00:00"
    assert renamed["cdate"] == listed["cdate"]


def _seed_timeline(sim: Sim) -> None:
    """a, b, c created on May 1, 2 and 3; a changed again on May 4."""
    for day, email, first in ((1, "a@example.com", "Zoe"), (2, "b@example.com", "Adam"),
                              (3, "c@example.com", "Mia")):
        sim.client.freeze_time(f"2024-05-0{day}T12:00:00Z")
        sim.client.add_contact(email, lists={1: "subscribed"}, first_name=first)
    sim.client.freeze_time("2024-05-04T12:00:00Z")
    sim.client.add_contact("a@example.com", last_name="Changed")


def test_incremental_readers_see_what_changed(sim: Sim) -> None:
    _seed_timeline(sim)
    after = sim.call("GET", "contacts?filters[updated_after]=2024-05-03T12:00:00Z&orders[udate]=ASC").body
    assert _emails(after) == ["c@example.com", "a@example.com"]  # inclusive, oldest change first
    assert after["meta"]["total"] == "2"
    assert _emails(sim.call("GET", "contacts?filters[updated_after]=2024-05-04").body) == ["a@example.com"]
    window = sim.call("GET", "contacts?filters[updated_after]=2024-05-02&filters[updated_before]=2024-05-04"
                             "&listid=1").body
    assert _emails(window) == ["b@example.com", "c@example.com"]  # before is exclusive
    created = sim.call("GET", "contacts?filters[created_after]=2024-05-02%2012:00:00"
                              "&filters[created_before]=2024-05-03T12:00:00%2B00:00").body
    assert _emails(created) == ["b@example.com"]
    # An unencoded '+' arrives as a space; the offset is still read as '+02:00' (= 10:00Z).
    plus = sim.call("GET", "contacts?filters[created_after]=2024-05-03T14:00:00+02:00").body
    assert _emails(plus) == ["c@example.com"]


@pytest.mark.parametrize(("orders", "expected"), [
    ("orders[id]=ASC", ["a", "b", "c"]),
    ("orders[id]=DESC", ["c", "b", "a"]),
    ("orders[cdate]=DESC", ["c", "b", "a"]),
    ("orders[udate]=DESC", ["a", "c", "b"]),
    ("orders[udate]=asc", ["b", "c", "a"]),
    ("orders[email]=DESC", ["c", "b", "a"]),
    ("orders[first_name]=ASC", ["b", "c", "a"]),
])
def test_contact_orders(sim: Sim, orders: str, expected: list[str]) -> None:
    _seed_timeline(sim)
    body = sim.call("GET", f"contacts?{orders}").body
    assert [e.split("@")[0] for e in _emails(body)] == expected


def test_ordered_pages_tile_without_gaps_or_overlaps(sim: Sim) -> None:
    sim.client.freeze_time("2024-05-01T00:00:00Z")
    for i in range(7):
        sim.client.add_contact(f"same{i}@example.com")  # all created in the same second: ties
    seen: list[str] = []
    for offset in range(0, 7, 3):
        body = sim.call("GET", f"contacts?orders[cdate]=DESC&limit=3&offset={offset}").body
        assert body["meta"]["total"] == "7"
        seen += _emails(body)
    assert seen == [f"same{i}@example.com" for i in range(7)]  # ties broken by id


def test_read_collections_are_paged_with_string_totals(sim: Sim) -> None:
    tier = sim.client.add_field("Tier", "text", "TIER")
    sim.client.add_field("Color", "text", "COLOR")
    for i in range(5):
        sim.client.add_contact(f"m{i}@example.com", lists={1: "subscribed", 2: "subscribed"},
                               fields={"TIER": "Gold" if i % 2 else "Silver", "COLOR": "Red"}, tags=[f"t{i % 2}"])
    sim.client.unsubscribe("m0@example.com", 2, how="form")

    memberships = sim.call("GET", "contactLists?limit=4&offset=8").body
    assert memberships["meta"]["total"] == "10"
    assert [r["id"] for r in memberships["contactLists"]] == ["9", "10"]
    everything = sim.call("GET", "contactLists?limit=100").body["contactLists"]
    assert [r["unsubreason"] is not None for r in everything].count(True) == 1

    values = sim.call("GET", "fieldValues?limit=3").body
    assert values["meta"]["total"] == "10" and len(values["fieldValues"]) == 3
    gold = sim.call("GET", f"fieldValues?filters[fieldid]={tier}&filters[val]=Gold").body
    assert gold["meta"]["total"] == "2"
    assert {v["contact"] for v in gold["fieldValues"]} == {
        (sim.client.contact(f"m{i}@example.com") or {})["id"] for i in (1, 3)}
    one = (sim.client.contact("m1@example.com") or {})["id"]
    own = sim.call("GET", f"contacts/{one}/fieldValues").body
    assert list(own) == ["fieldValues"] and [v["value"] for v in own["fieldValues"]] == ["Gold", "Red"]

    tags = sim.call("GET", "contactTags?offset=3").body
    assert tags["meta"]["total"] == "5" and len(tags["contactTags"]) == 2
    link = tags["contactTags"][0]
    assert ISO.match(link["cdate"]) and PLAIN.match(link["updated_timestamp"])
    assert sim.call("DELETE", f"contactTags/{link['id']}").status == 200
    assert sim.call("GET", "contactTags").body["meta"]["total"] == "4"
    t1 = sim.call("GET", "tags?filters[search][eq]=t1").body["tags"][0]["id"]
    assert [t["tag"] for t in sim.call("GET", f"contacts/{one}/contactTags").body["contactTags"]] == [t1]


@pytest.mark.parametrize(("path", "named"), [
    ("contacts?tagid=3", "'tagid'"),
    ("contacts?listid=1&search=ann", "'search'"),
    ("contacts?filters[fancy]=1", "'filters[fancy]'"),
    ("contacts?orders[score]=ASC", "'orders[score]'"),
    ("contacts?ids[]=1&ids[]=2", "'ids[]'"),
    ("lists?filters[name]=VIP", "'filters[name]'"),
    ("contactLists?filters[list]=1", "'filters[list]'"),
    ("contacts/1/contactLists?limit=5", "'limit'"),
    ("fields?orders[title]=ASC", "'orders[title]'"),
    ("tags?filters[search][neq]=x", "'filters[search][neq]'"),
    ("?include=everything", "'include'"),
    ("deals", "GET /api/3/deals"),
])
def test_what_is_not_simulated_is_refused_with_501_naming_it(sim: Sim, path: str, named: str) -> None:
    sim.client.add_contact("someone@example.com", lists={1: "subscribed"})
    reply = sim.call("GET", path)
    assert reply.status == 501, reply
    assert named in reply.body["message"]


@pytest.mark.parametrize(("path", "named"), [
    ("contacts?orders[id]=sideways", "orders[id]"),
    ("contacts?filters[updated_after]=last%20tuesday", "filters[updated_after]"),
    ("contacts?listid=one", "listid"),
    ("fieldValues?filters[fieldid]=x", "filters[fieldid]"),
])
def test_implemented_parameters_with_unusable_values_are_400(sim: Sim, path: str, named: str) -> None:
    reply = sim.call("GET", path)
    assert reply.status == 400 and named in reply.body["message"]


def test_bad_key_html_answers_200_with_a_login_page(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(api_keys=("good",), bad_key_html=True)
    for key in ("wrong", None):
        page = sim.call("GET", "contacts?email=a@example.com", key=key)
        assert page.status == 200
        assert (page.header("Content-Type") or "").startswith("text/html")
        assert "<form" in page.body and "Log in" in page.body
        assert page.header("RateLimit-Limit") is None
    assert sim.call("GET", "lists", key="good").body["meta"]["total"] == "5"  # a valid key: JSON as ever
    sim.client.configure(bad_key_html=False)
    assert sim.call("GET", "lists", key="wrong").status == 403
    sim.client.configure(bad_key_html=True)
    assert sim.call("GET", "lists", key="wrong").status == 200
    assert sim.client.settings()["bad_key_html"] is True
