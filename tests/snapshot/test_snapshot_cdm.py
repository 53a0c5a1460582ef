"""CDM folders as Dynamics 365 Customer Insights exports a segment: model.json, headerless CSV partitions in
dated folders, on disk and on moto's S3."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from snapshot_support import Store, read_all, rows_of

from worker.snapshot import SnapshotError, SnapshotRules, read_pages, snapshot_identity

EXPORT = "CustomerInsights_4f1c/VipExport/"
ATTRIBUTES = [{"name": "CustomerId", "dataType": "string"}, {"name": "EmailAddress", "dataType": "string"},
              {"name": "FirstName", "dataType": "string"}]


def partition(location: str, **settings: Any) -> dict[str, Any]:
    return {"name": location.rsplit("/", 1)[-1].removesuffix(".csv"), "location": location,
            "fileFormatSettings": {"$type": "CsvFormatSettings", "quoteStyle": "QuoteStyle.Csv",
                                   "csvStyle": "CsvStyle.QuoteAlways", **settings}}


def model(*entities: dict[str, Any]) -> bytes:
    return orjson.dumps({"name": "VipExport", "version": "1.0", "entities": list(entities)})


def entity(name: str, partitions: list[dict[str, Any]], attributes: list[dict[str, Any]] | None = None) -> dict:
    return {"$type": "LocalEntity", "name": name, "attributes": attributes or ATTRIBUTES, "partitions": partitions}


def customer_insights(store: Store) -> str:
    """The export as Customer Insights writes it: two headerless partitions in dated folders."""
    store.put(f"{EXPORT}Vip/2026/12/06/1200/Vip_1.csv", b'"c1","a@x.io","Ada"\r\n"c2","b@x.io","Bo, Jr."\r\n')
    store.put(f"{EXPORT}Vip/2026/12/06/1200/Vip_2.csv", b'"c3","c@x.io",""\r\n')
    store.put(f"{EXPORT}Vip/2026/12/05/1200/Vip_1.csv", b'"old","old@x.io","Yesterday"\r\n')  # not listed
    parts = [partition("Vip/2026/12/06/1200/Vip_1.csv"), partition(store.uri(f"{EXPORT}Vip/2026/12/06/1200/Vip_2.csv"))]
    return store.put(f"{EXPORT}model.json", model(entity("Vip", parts)))


def test_the_entity_is_read_from_its_partitions_with_the_attributes_as_header(store: Store) -> None:
    uri = customer_insights(store)
    first, second = (store.uri(f"{EXPORT}Vip/2026/12/06/1200/Vip_{i}.csv") for i in (1, 2))
    pages = read_all(uri)
    assert [p.columns for p in pages] == [("CustomerId", "EmailAddress", "FirstName")] * 2
    assert rows_of(pages) == [
        (first, 1, {"CustomerId": "c1", "EmailAddress": "a@x.io", "FirstName": "Ada"}),
        (first, 2, {"CustomerId": "c2", "EmailAddress": "b@x.io", "FirstName": "Bo, Jr."}),
        (second, 1, {"CustomerId": "c3", "EmailAddress": "c@x.io", "FirstName": ""}),
    ]
    assert len(read_all(uri, rules=SnapshotRules(require_marker=True))) == 2  # model.json is its own marker


def test_a_partition_with_column_headers_and_another_delimiter(store: Store) -> None:
    store.put(f"{EXPORT}Vip/p1.csv", b"CustomerId;EmailAddress;FirstName\nc1;a@x.io;Ada\n")
    uri = store.put(f"{EXPORT}model.json", model(entity("Vip", [partition("Vip/p1.csv", columnHeaders=True,
                                                                              delimiter=";")])))
    assert [(line, row) for _, line, row in rows_of(read_all(uri))] == [
        (2, {"CustomerId": "c1", "EmailAddress": "a@x.io", "FirstName": "Ada"})]


def test_a_row_with_another_width_than_the_attributes_fails_naming_the_line(store: Store) -> None:
    store.put(f"{EXPORT}Vip/p1.csv", b'"c1","a@x.io","Ada"\n"c2","b@x.io"\n')
    uri = store.put(f"{EXPORT}model.json", model(entity("Vip", [partition("Vip/p1.csv")])))
    with pytest.raises(SnapshotError, match=r"line 2 has 2 fields where model.json declares 3"):
        read_all(uri)


def test_several_entities_need_the_setting_naming_one(store: Store) -> None:
    store.put(f"{EXPORT}Vip/p1.csv", b'"c1","a@x.io","Ada"\n')
    store.put(f"{EXPORT}Lapsed/p1.csv", b'"c9","z@x.io","Zed"\n')
    uri = store.put(f"{EXPORT}model.json", model(entity("Vip", [partition("Vip/p1.csv")]),
                                                 entity("Lapsed", [partition("Lapsed/p1.csv")])))
    with pytest.raises(SnapshotError, match=r"holds 2 entities \('Vip', 'Lapsed'\); set the export's snapshot_entity"):
        read_pages(uri)
    with pytest.raises(SnapshotError, match=r"has no entity 'Gone' \(snapshot_entity\); it holds 'Vip', 'Lapsed'"):
        read_pages(uri, rules=SnapshotRules(entity="Gone"))
    rows = [row for _, _, row in rows_of(read_all(uri, rules=SnapshotRules(entity="Lapsed")))]
    assert rows == [{"CustomerId": "c9", "EmailAddress": "z@x.io", "FirstName": "Zed"}]


@pytest.mark.parametrize("location", ["../Other/p1.csv", "/etc/passwd", "file:///etc/passwd",
                                      "s3://another-bucket/p1.csv", "Vip/_temporary/p1.csv"])
def test_a_partition_outside_the_folder_is_refused(store: Store, location: str) -> None:
    store.put("CustomerInsights_4f1c/Other/p1.csv", b'"c1","intruder@x.io","X"\n')
    uri = store.put(f"{EXPORT}model.json", model(entity("Vip", [partition(location)])))
    with pytest.raises(SnapshotError, match=r"model.json .* lists .*(not a file in|absolute path|starting with)"):
        read_pages(uri)


@pytest.mark.parametrize("again", ["Vip/1200/Vip_1.csv", "./Vip/1200/Vip_1.csv", "Vip/1200/%56ip_1.csv",
                                   "Vip/x/../1200/Vip_1.csv", "{uri}"])
def test_a_partition_listed_twice_however_spelled_is_refused_naming_both(store: Store, again: str) -> None:
    """Read twice, a partition's people count twice and another partition's may be missing: refused."""
    first = store.put(f"{EXPORT}Vip/1200/Vip_1.csv", b'"c1","a@x.io","Ada"\r\n')
    parts = [partition("Vip/1200/Vip_1.csv"), partition(again.replace("{uri}", first))]
    uri = store.put(f"{EXPORT}model.json", model(entity("Vip", parts)))
    with pytest.raises(SnapshotError, match=r"model.json .* lists the same file .*Vip_1.csv twice, as partitions\[0\] "
                                            r"'Vip/1200/Vip_1.csv' and partitions\[1\] .*: a model.json lists each "
                                            r"file once") as info:
        read_pages(uri)
    assert info.value.code == "snapshot_unreadable"


def test_a_cdm_folder_copied_off_azure_needs_relative_locations(store: Store) -> None:
    """A copy keeps the https URLs Customer Insights wrote; off Azure they name nothing the worker reads, so the
    error says to write the locations relative to the model.json (and that copy is then read)."""
    if store.kind == "az":
        pytest.skip("on Azure the https URLs are read (test_snapshot_azure)")
    store.put(f"{EXPORT}Vip/1200/Vip_1.csv", b'"c1","a@x.io","Ada"\r\n')
    url = "https://cistorage.dfs.core.windows.net/customerinsights/CustomerInsights_4f1c/VipExport/Vip/1200/Vip_1.csv"
    uri = store.put(f"{EXPORT}model.json", model(entity("Vip", [partition(url)])))
    with pytest.raises(SnapshotError, match=r"a web URL: .* read only from a model.json on Azure \(az:// or "
                                            r"abfss://\); in a copy elsewhere write each location relative to the "
                                            r"model.json"):
        read_pages(uri)
    store.put(f"{EXPORT}model.json", model(entity("Vip", [partition("Vip/1200/Vip_1.csv")])))
    assert [row["EmailAddress"] for _, _, row in rows_of(read_all(uri))] == ["a@x.io"]


def test_a_model_json_corrected_in_place_is_another_snapshot(store: Store) -> None:
    """Same partition files, attributes swapped (or another delimiter): the rows are read otherwise, so the
    identity (the plan key, the direct run's id) differs and a corrected model.json is a fresh plan, never a
    resume of the plan made under the wrong columns. Rewriting the same bytes keeps the identity."""
    uri = customer_insights(store)
    first = snapshot_identity(uri)
    assert snapshot_identity(uri) == first
    parts = [partition("Vip/2026/12/06/1200/Vip_1.csv"), partition(store.uri(f"{EXPORT}Vip/2026/12/06/1200/Vip_2.csv"))]
    swapped = [ATTRIBUTES[1], ATTRIBUTES[0], ATTRIBUTES[2]]
    store.put(f"{EXPORT}model.json", model(entity("Vip", parts, swapped)))
    assert read_all(uri)[0].columns == ("EmailAddress", "CustomerId", "FirstName")
    assert snapshot_identity(uri) != first
    store.put(f"{EXPORT}model.json", model(entity("Vip", parts)))  # the original bytes again
    assert snapshot_identity(uri) == first
    semicolons = [partition(p["location"], delimiter=";") for p in parts]
    store.put(f"{EXPORT}model.json", model(entity("Vip", semicolons)))
    assert snapshot_identity(uri) != first


@pytest.mark.parametrize(("settings", "message"), [
    ({"encoding": "UTF-16"}, r"is UTF-16; export the CDM folder as UTF-8"),
    ({"quoteStyle": "QuoteStyle.None"}, r"uses QuoteStyle.None; only QuoteStyle.Csv is read"),
    ({"$type": "ParquetFormatSettings"}, r"is ParquetFormatSettings; only CSV partitions"),
    ({"columnHeaders": "yes"}, r'"columnHeaders" must be true or false'),
])
def test_partition_settings_that_cannot_be_read_are_refused(store: Store, settings: dict, message: str) -> None:
    store.put(f"{EXPORT}Vip/p1.csv", b'"c1","a@x.io","Ada"\n')
    uri = store.put(f"{EXPORT}model.json", model(entity("Vip", [partition("Vip/p1.csv", **settings)])))
    with pytest.raises(SnapshotError, match=message):
        read_pages(uri)


@pytest.mark.parametrize(("document", "message"), [
    (b"{", r"is not JSON"),
    (b'{"entities": []}', r'has no "entities"'),
    (orjson.dumps({"entities": [{"name": "Vip", "attributes": [], "partitions": []}]}), r'has no "attributes"'),
    (orjson.dumps({"entities": [{"name": "Vip", "attributes": ATTRIBUTES, "partitions": []}]}),
     r'has no "partitions" \(no data files'),
])
def test_a_model_json_that_is_not_one_fails_naming_the_problem(store: Store, document: bytes, message: str) -> None:
    uri = store.put(f"{EXPORT}model.json", document)
    with pytest.raises(SnapshotError, match=message):
        read_pages(uri)
