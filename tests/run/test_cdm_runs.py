"""Issue 16 must-show 3 (on moto's S3; Azure is not built yet): a CDM folder laid out as Customer Insights
writes it (model.json, headerless partitions in dated folders, two partitions): the list exact, and a churned
refresh (a new export at the same model.json) sends only the changes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.run.conftest import bulk_posts, subscribed, write_config
from worker.cli import main
from worker.contacts.samples import evolve, make_segment

ROOT = "CustomerInsights_4f1c/VipExport/"
COLUMNS = ("CustomerId", "EmailAddress", "FirstName", "LastName", "Phone")


@pytest.fixture
def s3(moto_server: str) -> Any:
    import boto3

    return boto3.client("s3")


def export_cdm(s3: Any, bucket: str, profiles: list[dict], stamp: str) -> str:
    """``profiles`` as Customer Insights exports a segment: two headerless partitions under ``stamp``; model.json."""
    half = len(profiles) // 2
    partitions = []
    for n, chunk in enumerate((profiles[:half], profiles[half:]), 1):
        text = io.StringIO()
        writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerows([[str(i), *(p.get(c) or "" for c in COLUMNS[1:])] for i, p in enumerate(chunk)])
        key = f"{ROOT}Vip/{stamp}/Vip_{n}.csv"
        s3.put_object(Bucket=bucket, Key=key, Body=text.getvalue().encode())
        partitions.append({"name": f"Vip_{n}", "location": f"Vip/{stamp}/Vip_{n}.csv",
                           "fileFormatSettings": {"$type": "CsvFormatSettings", "quoteStyle": "QuoteStyle.Csv",
                                                  "csvStyle": "CsvStyle.QuoteAlways", "delimiter": ","}})
    model = {"name": "VipExport", "version": "1.0", "entities": [{
        "$type": "LocalEntity", "name": "Vip", "partitions": partitions,
        "attributes": [{"name": c, "dataType": "string"} for c in COLUMNS]}]}
    s3.put_object(Bucket=bucket, Key=f"{ROOT}model.json", Body=orjson.dumps(model))
    return f"s3://{bucket}/{ROOT}model.json"


def sync(capsys: Any, config: Path, snapshot: str) -> tuple[int, dict]:
    rc = main(["sync", "--config", str(config), "--export", "vip", "--snapshot", snapshot])
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else {}


def assert_list_exact(simc: Any, expected: dict[str, dict]) -> None:
    members = subscribed(simc)
    assert set(members) == set(expected)
    for email, p in expected.items():
        m = members[email]
        assert (m["first_name"], m["last_name"], m["phone"]) == (p["FirstName"], p["LastName"], p["Phone"]), email


def test_a_customer_insights_export_then_a_churned_refresh(tmp_path: Path, capsys: Any, sim: Any, s3: Any,
                                                         s3_bucket: str) -> None:
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=20, export="require_marker = true")
    ids = list(range(4_000))
    first = make_segment(ids, invalid_rate=0.01, seed=5)
    uri = export_cdm(s3, s3_bucket, first.profiles, "2026/12/05/1200")
    rc, event = sync(capsys, config, uri)
    assert rc == 0, event
    assert event["counts"]["profiles"] == len(first.profiles) and event["counts"]["invalid"] == first.invalid > 0
    assert_list_exact(simc, first.expected)

    kept, versions, _, _ = evolve(ids, changed=0.05, removed=0.02, new=0.03, next_id=4_000)
    second = make_segment(kept, invalid_rate=0.01, versions=versions, seed=5)
    before = len(bulk_posts(simc))
    rc, event = sync(capsys, config, export_cdm(s3, s3_bucket, second.profiles, "2026/12/06/1200"))
    assert rc == 0, event
    added = set(second.expected) - set(first.expected)
    left = set(first.expected) - set(second.expected)
    updated = {e for e in set(first.expected) & set(second.expected) if first.expected[e] != second.expected[e]}
    c = event["counts"]
    assert (c["added"], c["updated"], c["removed"]) == (len(added), len(updated), len(left)) and updated and left
    assert len(bulk_posts(simc)) - before == -(-(len(added) + len(updated) + len(left)) // 250)
    assert_list_exact(simc, second.expected)
