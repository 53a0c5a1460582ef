"""Per-contact endpoints, lists, fields, tags: shapes, string ids and totals, pagination, error families."""

from __future__ import annotations

from collections.abc import Callable

from sim_support import Sim


def test_contact_sync_upserts_by_email(sim: Sim) -> None:
    tier = sim.client.add_field("Tier", "text", "TIER")
    created = sim.call("POST", "contact/sync", {"contact": {
        "email": "Jo@Example.com", "firstName": "Jo", "lastName": "Doe", "phone": "123",
        "fieldValues": [{"field": str(tier), "value": "Gold"}]}})
    assert created.status == 201
    contact = created.body["contact"]
    assert contact["email"] == "jo@example.com" and contact["firstName"] == "Jo"
    assert isinstance(contact["id"], str)
    assert created.body["fieldValues"][0]["field"] == str(tier)
    assert created.body["fieldValues"][0]["value"] == "Gold"
    updated = sim.call("POST", "contact/sync", {"contact": {"email": "jo@example.com", "lastName": "Roe"}})
    assert updated.status == 200 and updated.body["contact"]["id"] == contact["id"]
    assert updated.body["contact"]["firstName"] == "Jo" and updated.body["contact"]["lastName"] == "Roe"
    bad = sim.call("POST", "contact/sync", {"contact": {"email": "nope"}})
    assert bad.status == 422 and bad.body["errors"][0]["source"]["pointer"] == "/data/attributes/email"


def test_contact_sync_respects_exclusions_and_contact_limit(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(requests_per_second=1000, contact_limit=1)
    sim.client.exclude("no@example.com")
    assert sim.call("POST", "contact/sync", {"contact": {"email": "no@example.com"}}).status == 422
    assert sim.call("POST", "contact/sync", {"contact": {"email": "one@example.com"}}).status == 201
    over = sim.call("POST", "contact/sync", {"contact": {"email": "two@example.com"}})
    assert over.status == 422 and over.body["errors"][0]["code"] == "contact_limit"
    assert sim.call("POST", "contact/sync", {"contact": {"email": "one@example.com"}}).status == 200


def test_create_contact_duplicate_is_422(sim: Sim) -> None:
    first = sim.call("POST", "contacts", {"contact": {"email": "dup@example.com"}})
    assert first.status == 201
    again = sim.call("POST", "contacts", {"contact": {"email": "DUP@example.com"}})
    assert again.status == 422
    assert again.body == {"errors": [{"title": "Email address already exists in the system", "detail": "",
                                      "code": "duplicate", "source": {"pointer": "/data/attributes/email"}}]}


def test_contact_search_filters_and_pagination(sim: Sim) -> None:
    for i in range(1, 31):
        sim.client.add_contact(f"c{i:02d}@example.com", lists={1: "subscribed"})
    for i in (5, 17, 29):
        sim.client.unsubscribe(f"c{i:02d}@example.com", 1)
    sim.client.add_contact("other@example.com", lists={2: "subscribed"})

    default = sim.call("GET", "contacts").body
    assert default["meta"]["total"] == "31" and len(default["contacts"]) == 20
    assert [c["id"] for c in default["contacts"]][:3] == ["1", "2", "3"]

    page = sim.call("GET", "contacts?listid=1&status=1&limit=10&offset=10").body
    assert page["meta"]["total"] == "27"
    assert len(page["contacts"]) == 10
    assert all(isinstance(c["id"], str) for c in page["contacts"])

    unsub = sim.call("GET", "contacts?listid=1&status=2").body
    assert [c["email"][:3] for c in unsub["contacts"]] == ["c05", "c17", "c29"]
    assert unsub["meta"]["total"] == "3"

    scan = sim.call("GET", "contacts?listid=1&orders[id]=ASC&id_greater=25&limit=100").body
    assert [int(c["id"]) for c in scan["contacts"]] == [26, 27, 28, 29, 30]
    assert scan["meta"]["total"] == "5"

    capped = sim.call("GET", "contacts?limit=500").body
    assert len(capped["contacts"]) == 31  # fewer than the cap of 100

    by_email = sim.call("GET", "contacts?email=C07@example.com").body
    assert [c["email"] for c in by_email["contacts"]] == ["c07@example.com"]
    assert by_email["meta"]["total"] == "1"
    assert sim.call("GET", "contacts?email=c07@example.com&listid=2").body["meta"]["total"] == "0"


def test_get_contact_and_404(sim: Sim) -> None:
    sim.client.add_contact("a@example.com", lists={3: "subscribed"}, first_name="A")
    reply = sim.call("GET", "contacts/1")
    assert reply.status == 200 and reply.body["contact"]["firstName"] == "A"
    assert reply.body["contactLists"][0]["list"] == "3" and reply.body["contactLists"][0]["status"] == "1"
    missing = sim.call("GET", "contacts/999")
    assert missing.status == 404 and missing.body == {"message": "No Result found for Subscriber with id 999"}


def test_contact_lists_can_resubscribe_and_it_is_counted(sim: Sim) -> None:
    sim.client.add_contact("r@example.com", lists={2: "subscribed"})
    sim.client.unsubscribe("r@example.com", 2)
    contact_id = sim.client.members(2)["r@example.com"]["id"]
    reply = sim.call("POST", "contactLists", {"contactList": {"list": 2, "contact": contact_id, "status": 1}})
    assert reply.status == 200 and reply.body["contactList"]["status"] == 1
    assert sim.client.members(2)["r@example.com"]["status"] == "subscribed"
    assert sim.client.stats()["resubscribed"] == 1
    # Unsubscribing through the API is fine and not a re-subscription.
    sim.call("POST", "contactLists", {"contactList": {"list": "2", "contact": contact_id, "status": "2"}})
    assert sim.client.members(2)["r@example.com"]["status"] == "unsubscribed"
    assert sim.client.stats()["resubscribed"] == 1
    body = {"contactList": {"list": 77, "contact": contact_id, "status": 1}}
    no_list = sim.call("POST", "contactLists", body)
    assert no_list.status == 404 and no_list.body["message"] == "No Result found for _List with id 77"
    no_contact = sim.call("POST", "contactLists", {"contactList": {"list": 2, "contact": 999, "status": 1}})
    assert no_contact.status == 404


def test_users_me_checks_a_key(sim: Sim) -> None:
    assert sim.call("GET", "users/me").body["user"]["id"] == "1"
    assert sim.call("GET", "users/me", key="wrong").status == 403


def test_lists(sim: Sim) -> None:
    body = sim.call("GET", "lists").body
    assert body["meta"]["total"] == "5"
    assert [(e["id"], e["name"]) for e in body["lists"]][:2] == [("1", "Newsletter"), ("2", "Customers")]
    assert sim.call("GET", "lists?limit=2&offset=4").body["lists"][0]["id"] == "5"
    one = sim.call("GET", "lists/3")
    assert one.status == 200 and one.body["list"]["name"] == "VIP" and one.body["list"]["stringid"] == "vip"
    missing = sim.call("GET", "lists/7")
    assert missing.status == 404 and missing.body == {"message": "No Result found for _List with id 7"}


def test_fields_pagination_and_perstag_filter(make_sim: Callable[..., Sim]) -> None:
    fields = [{"id": i, "title": f"Field {i}", "type": "text", "perstag": f"F{i}"} for i in range(1, 26)]
    fields[0] = {"id": 1, "title": "Tier", "type": "dropdown", "perstag": "LOYALTY_TIER",
                 "options": ["Gold", "Silver"]}
    sim = make_sim(requests_per_second=1000, fields=fields)
    first = sim.call("GET", "fields").body
    assert first["meta"]["total"] == "25" and len(first["fields"]) == 20
    assert first["fields"][0]["id"] == "1" and first["fields"][0]["perstag"] == "LOYALTY_TIER"
    option_ids = first["fields"][0]["options"]
    values = {row["id"]: row["value"] for row in first["fieldOptions"]}
    assert [values[i] for i in option_ids] == ["Gold", "Silver"]
    rest = sim.call("GET", "fields?offset=20").body
    assert [f["id"] for f in rest["fields"]] == ["21", "22", "23", "24", "25"]
    assert len(sim.call("GET", "fields?limit=1000").body["fields"]) == 25
    filtered = sim.call("GET", "fields?filters[perstag]=loyalty_tier").body
    assert filtered["meta"]["total"] == "1" and filtered["fields"][0]["title"] == "Tier"


def test_tags_and_contact_tags(sim: Sim) -> None:
    sim.client.add_contact("t@example.com")
    created = sim.call("POST", "tags", {"tag": {"tag": "VIP", "tagType": "contact", "description": "d"}})
    assert created.status == 201 and created.body["tag"]["tag"] == "VIP"
    tag_id = created.body["tag"]["id"]
    assert sim.call("POST", "tags", {"tag": {"tag": "vip"}}).status == 422
    found = sim.call("GET", "tags?search=vi").body
    assert found["meta"]["total"] == "1" and found["tags"][0]["id"] == tag_id
    link = sim.call("POST", "contactTags", {"contactTag": {"contact": "1", "tag": tag_id}})
    assert link.status == 201 and link.body["contactTag"]["tag"] == tag_id
    assert (sim.client.contact("t@example.com") or {})["tags"] == ["VIP"]
    assert sim.call("POST", "contactTags", {"contactTag": {"contact": 999, "tag": tag_id}}).status == 404
    link_id = link.body["contactTag"]["id"]
    assert sim.call("DELETE", f"contactTags/{link_id}").status == 200
    assert (sim.client.contact("t@example.com") or {})["tags"] == []
    gone = sim.call("DELETE", f"contactTags/{link_id}")
    assert gone.status == 404
    assert gone.body["message"] == f"No Result found for SubscriberTag with id {link_id}"


def test_delete_contact_removes_it_everywhere(sim: Sim) -> None:
    """DELETE contacts/{id} (and someone deleting in the UI): gone from lists, searches, tags and records."""
    tier = sim.client.add_field("Tier", "text", "TIER")
    for i in range(1, 6):
        sim.client.add_contact(f"d{i}@example.com", lists={3: "subscribed"}, tags=["vip"], fields={"TIER": "g"})
    sim.client.unsubscribe("d4@example.com", 3)
    gone = sim.call("DELETE", "contacts/2")
    assert gone.status == 200 and gone.body == {}
    assert sim.client.delete_contact("d4@example.com") is True
    assert sim.client.delete_contact("d4@example.com") is False
    again = sim.call("DELETE", "contacts/2")
    assert again.status == 404 and again.body == {"message": "No result found for contact with id 2"}
    assert sim.call("GET", "contacts/2").status == 404
    assert sorted(sim.client.members(3)) == ["d1@example.com", "d3@example.com", "d5@example.com"]
    everyone = sim.call("GET", "contacts?orders[id]=ASC").body
    assert [c["id"] for c in everyone["contacts"]] == ["1", "3", "5"] and everyone["meta"]["total"] == "3"
    assert sim.call("GET", "contacts?listid=3&status=1&limit=1").body["meta"]["total"] == "3"
    assert sim.call("GET", "contacts?listid=3&status=2").body["meta"]["total"] == "0"
    assert sim.call("GET", "contacts?email=d2@example.com").body["contacts"] == []
    assert sim.call("GET", "contactTags").body["meta"]["total"] == "3"
    assert sim.call("GET", "contactLists").body["meta"]["total"] == "3"
    assert sim.call("GET", f"fieldValues?filters[fieldid]={tier}").body["meta"]["total"] == "3"
    # the same email comes back as a new contact with a new id
    assert sim.call("POST", "contact/sync", {"contact": {"email": "d2@example.com"}}).body["contact"]["id"] == "6"
    assert sim.client.stats()["contacts"] == 4
