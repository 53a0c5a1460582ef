"""Must-shows 3 and 4: the alert rules pass ``promtool check rules`` and ``promtool test rules``; the
dashboard loads (valid JSON, unique panel ids, a datasource variable) and, with the rules, names only
metrics the worker exports (checked against a live scrape in test_e2e_metrics) or the broker
exporters' queue-depth metrics."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "segment-export.json"
BROKER_METRICS = {"rabbitmq_queue_messages_ready", "aws_sqs_approximate_number_of_messages_visible_average"}
PROMETHEUS_OWN = {"up"}
ALERTS = {"SegmentExportNotSucceeded", "SegmentExportRunsFailing", "SegmentExportDeadLettered",
          "SegmentExportRateLimited", "SegmentExportWorkerDown", "SegmentExportRunTooLong",
          # issues 8 and 9: the removal guard, settling deliveries, retries, many replicas
          "SegmentExportRemovalGuardTripped", "SegmentExportLimiterDegraded", "SegmentExportDeliveriesStuck",
          "SegmentExportSettleFailures", "SegmentExportRunsRetrying", "SegmentExportLeaseLost",
          # issue 18: the list as ActiveCampaign holds it
          "SegmentExportListDrift"}


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool from PATH; else Debian's ``prometheus`` package via apt-get (bounded); else skip."""
    found = shutil.which("promtool")
    if found:
        return found
    if not shutil.which("apt-get"):
        pytest.skip("promtool is not installed and apt-get is not available to install it")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run([*sudo, "apt-get", "install", "-y", "--no-install-recommends", "prometheus"], env=env,
                       capture_output=True, timeout=300, check=True)
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.fail(f"promtool missing and installing Debian's prometheus package failed: {exc}")
    found = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    assert found, "the prometheus package installed no promtool"
    return found


def test_promtool_check_rules(promtool):
    out = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_test_rules(promtool):
    out = subprocess.run([promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, timeout=60,
                         cwd=RULE_TESTS.parent)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_annotations_severity_and_both_kinds_of_test():
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} == ALERTS
    for r in rules:
        assert r["labels"]["severity"] in {"critical", "warning", "info"}, r["alert"]
        assert r["annotations"]["summary"] and "Check first" in r["annotations"]["description"], r["alert"]
    fires, quiet = set(), set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for t in case.get("alert_rule_test", []):
            (fires if t.get("exp_alerts") else quiet).add(t["alertname"])
    assert fires == ALERTS and quiet == ALERTS, (ALERTS - fires, ALERTS - quiet)


def test_dashboard_loads():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["schemaVersion"] >= 36 and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and len(ids) >= 10
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for p in dash["panels"]:
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["targets"] and all(t["expr"] for t in p["targets"]), p["title"]


def metric_names_used() -> set[str]:
    """Every metric name in the dashboard's queries and the rules' expressions."""
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
    exprs += [v.get("query", "") for v in json.loads(DASHBOARD.read_text())["templating"]["list"]
              if v["type"] == "query"]
    exprs += [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    names: set[str] = set()
    for e in exprs:
        names.update(re.findall(r"\b(?:segment_export|rabbitmq|aws_sqs)_[a-z0-9_]+", e))
        names.update(n for n in PROMETHEUS_OWN if re.search(rf"\b{n}\{{", e))
    return names


def unexported(names: set[str], scraped: set[str]) -> set[str]:
    """Names neither in the scrape (families or samples) nor a named broker/Prometheus metric."""
    return {n for n in names if n not in scraped and n not in BROKER_METRICS and n not in PROMETHEUS_OWN}


def test_names_used_are_worker_metrics_or_named_broker_metrics():
    """Static half of must-show 4, against this process's registry (the live scrape is in test_e2e_metrics)."""
    from prometheus_client import REGISTRY, generate_latest

    import worker.service.metrics  # noqa: F401 - registers the worker's metrics
    from tests.service.support import family_names

    names = metric_names_used()
    assert {"segment_export_runs_total", "rabbitmq_queue_messages_ready", "up"} <= names
    assert not unexported(names, family_names(generate_latest(REGISTRY).decode()))
