"""A third-party ActiveCampaign client from PyPI, not our own code, reads and writes the simulator.

`activecampaign-python` (declared in pyproject's test extras) is written from AC's documentation: if the
simulator's shapes only suited segment-export's client, this is where it would show. Its `Client` takes
the account URL as a constructor argument, so it points at the simulator without any patching; it uses
`requests`, which honours proxy variables, so loopback is excluded from any proxy for the test.

Its import name, `activecampaign`, is also the name our own tests/activecampaign package gets in a pytest
run (tests/ is on sys.path), so the installed distribution is loaded under a private module name.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sim_support import KEY, Sim

_PRIVATE_NAME = "thirdparty_activecampaign"


def _third_party_client_module() -> ModuleType:
    """`activecampaign.client` of the installed activecampaign-python, whatever `activecampaign` means here."""
    if _PRIVATE_NAME not in sys.modules:
        dist = importlib.metadata.distribution("activecampaign-python")  # PackageNotFoundError: pip install
        init = Path(str(dist.locate_file("activecampaign/__init__.py")))
        spec = importlib.util.spec_from_file_location(_PRIVATE_NAME, init,
                                                      submodule_search_locations=[str(init.parent)])
        assert spec is not None and spec.loader is not None, init
        package = importlib.util.module_from_spec(spec)
        sys.modules[_PRIVATE_NAME] = package
        spec.loader.exec_module(package)
    return importlib.import_module(_PRIVATE_NAME + ".client")


Client: Any = _third_party_client_module().Client


@pytest.fixture
def client(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    yield Client(sim.url, KEY)


def _seed(sim: Sim) -> None:
    """Three contacts imported through the API on May 1; one changed on May 3; one unsubscribed itself."""
    sim.client.add_field("Loyalty tier", "dropdown", "LOYALTY_TIER", ["Gold", "Silver"])
    sim.client.freeze_time("2024-05-01T09:00:00Z")
    reply = sim.bulk([
        {"email": "ann@example.com", "first_name": "Ann", "fields": [{"id": 1, "value": "Gold"}],
         "tags": ["vip"], "subscribe": [{"listid": 1}]},
        {"email": "bob@example.com", "first_name": "Bob", "fields": [{"id": 1, "value": "Silver"}],
         "subscribe": [{"listid": 1}]},
        {"email": "cy@example.com", "first_name": "Cy", "subscribe": [{"listid": 1}, {"listid": 2}]},
    ])
    sim.wait_batch(reply.body["batchId"])
    sim.client.freeze_time("2024-05-03T09:00:00Z")
    sim.client.add_contact("bob@example.com", last_name="Builder")
    sim.client.unsubscribe("cy@example.com", 1, how="campaign")


def test_a_third_party_client_reads_contacts_lists_memberships_and_fields(sim: Sim, client: Client) -> None:
    _seed(sim)
    assert client.users.retrieve_logged_in_user()["user"]["username"] == "admin"

    lists = client.lists.retrieve_all_lists()
    assert lists["meta"]["total"] == "5"
    assert [entry["name"] for entry in lists["lists"]][:2] == ["Newsletter", "Customers"]
    assert client.lists.retrieve_a_list(2)["list"]["name"] == "Customers"

    subscribed = client.contacts.list_all_contacts(listid=1, status=1, **{"orders[email]": "DESC"})
    assert [c["email"] for c in subscribed["contacts"]] == ["bob@example.com", "ann@example.com"]
    changed = client.contacts.list_all_contacts(**{"filters[updated_after]": "2024-05-02T00:00:00Z"})
    assert [c["email"] for c in changed["contacts"]] == ["bob@example.com"]
    assert changed["contacts"][0]["udate"] == "2024-05-03T09:00:00+00:00"

    cy_id = client.contacts.list_all_contacts(email="cy@example.com")["contacts"][0]["id"]
    cy = client.contacts.retrieve_a_contact(cy_id)
    memberships = {r["list"]: r for r in cy["contactLists"]}
    assert memberships["1"]["status"] == "2" and memberships["1"]["campaign"] == "1"
    assert memberships["2"]["status"] == "1" and memberships["2"]["campaign"] is None

    fields = client.contacts.list_all_custom_fields()
    assert [(f["perstag"], f["type"]) for f in fields["fields"]] == [("LOYALTY_TIER", "dropdown")]
    assert [o["value"] for o in fields["fieldOptions"]] == ["Gold", "Silver"]
    values = client.contacts.list_all_custom_field_values()
    assert values["meta"]["total"] == "2"
    assert sorted(v["value"] for v in values["fieldValues"]) == ["Gold", "Silver"]
    ann_id = client.contacts.list_all_contacts(email="ann@example.com")["contacts"][0]["id"]
    assert [v["value"] for v in client.contacts.retrieve_a_contacts_field_values(ann_id)["fieldValues"]] == ["Gold"]
    tag_links = client.contacts.retrieve_contact_tags(ann_id)["contactTags"]
    assert [t["tag"] for t in tag_links] == [client.tags.list_all_tags(search="vip")["tags"][0]["id"]]


def test_a_third_party_client_writes_and_meets_the_simulators_refusals(sim: Sim, client: Client) -> None:
    _seed(sim)
    cy_id = client.contacts.list_all_contacts(email="cy@example.com")["contacts"][0]["id"]
    answer = client.contacts.update_list_status_for_a_contact(
        {"contactList": {"list": 1, "contact": cy_id, "status": 1, "sourceid": 4}})
    assert answer["contactList"]["status"] == 1
    assert sim.client.stats()["resubscribed_own"] == 1  # AC allows it; the simulator makes it visible
    assert (sim.client.contact_list("cy@example.com", 1) or {})["sourceid"] == "4"

    # A filter the simulator does not implement is refused, never answered with the whole account.
    refused = client.contacts.list_all_contacts(tagid=1)
    assert "contacts" not in refused and "'tagid'" in refused["message"]
    assert sim.client.requests()[-1]["status"] == 501

    # This client never checks statuses: with a bad key and AC's login-page answer it gets HTML, not data.
    sim.client.configure(bad_key_html=True)
    page = Client(sim.url, "wrong-key").contacts.list_all_contacts()
    assert isinstance(page, str) and "<form" in page
