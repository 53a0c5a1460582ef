"""Issue 9, must-show 5 (manifests): both kustomize overlays render, their core objects validate against
Kubernetes' schemas, the custom resources carry the fields that matter, and every value that must agree
(queue names, ports, probe paths, Secrets, the config itself) does."""

from __future__ import annotations

import posixpath
from urllib.parse import urlsplit

import kubernetes_validate

from tests.deploy.manifests import (
    CORE_KINDS,
    CRD_KINDS,
    ROOT,
    Doc,
    arg_value,
    config_toml,
    load_toml,
    one,
    port_number,
    selects,
    worker_container,
    worker_deployment,
)
from worker.settings import parse_config

K8S_VERSION = "1.30"
SHUTDOWN_CANCEL_WAIT = 5  # seconds the worker waits for cancelled runs after shutdown_grace_seconds


def config_of(docs: list[Doc]):
    _, key, text = config_toml(docs)
    return parse_config(load_toml(text), key)


def validation_problem(doc: Doc) -> str | None:
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(p) for p in exc.path)
        return f"{doc['kind']} {doc['metadata']['name']}: {exc.message} (at {where or 'top level'})"
    return None


def test_renders_and_core_objects_validate(docs):
    kinds = {d["kind"] for d in docs}
    assert kinds - CORE_KINDS - CRD_KINDS == set(), "a kind neither validated nor checked below"
    assert {"Deployment", "Service", "ConfigMap", "ServiceAccount"} <= kinds
    assert kinds >= CRD_KINDS, f"missing custom resources: {CRD_KINDS - kinds}"
    problems = [p for d in docs if d["kind"] in CORE_KINDS if (p := validation_problem(d))]
    assert not problems, "\n".join(problems)


def test_strict_validation_rejects_a_misspelt_field(docs):
    """The validator is strict (unknown fields fail), so the test above would catch a typo."""
    container = worker_container(docs)
    container["livenessprobe"] = container.pop("livenessProbe")
    assert validation_problem(worker_deployment(docs)) is not None


def test_config_map_holds_a_config_the_worker_accepts(docs, monkeypatch):
    config = config_of(docs)
    container = worker_container(docs)
    pod = worker_deployment(docs)["spec"]["template"]["spec"]
    assert config.worker.state_url.startswith("s3://"), "replicas must share the state: state_url = s3://..."
    assert config.worker.redis_url, "replicas share the budget and leases through [worker] redis_url"
    env = {e["name"]: e for e in container.get("env", [])}
    for conn in config.connections.values():
        if conn.api_key_env:  # the Deployment feeds the variable from a Secret, and the worker reads it
            source = env.get(conn.api_key_env, {}).get("valueFrom", {}).get("secretKeyRef")
            assert source, f"connection {conn.name}: env {conn.api_key_env} does not come from a Secret"
            monkeypatch.setenv(conn.api_key_env, "test-key-value")
            assert conn.api_key().reveal() == "test-key-value"
        else:  # the key file is a key of a Secret volume mounted read-only
            folder, name = posixpath.split(conn.api_key_file)
            mount = next((m for m in container["volumeMounts"] if m["mountPath"].rstrip("/") == folder), None)
            assert mount and mount.get("readOnly"), f"connection {conn.name}: {folder} is not mounted read-only"
            volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
            assert "secret" in volume, f"connection {conn.name}: {folder} is not a Secret volume"
            assert name and "/" not in name


def test_redis_url_names_the_redis_service(docs):
    url = urlsplit(config_of(docs).worker.redis_url)
    assert url.scheme in ("redis", "rediss")
    service = one(docs, "Service", url.hostname)
    assert (url.port or 6379) in [p["port"] for p in service["spec"]["ports"]]
    redis = one(docs, "Deployment", url.hostname)
    assert selects(service["spec"]["selector"], redis["spec"]["template"]["metadata"]["labels"])
    policy = one(docs, "NetworkPolicy", url.hostname)
    pod_labels = worker_deployment(docs)["spec"]["template"]["metadata"]["labels"]
    assert any(selects(src["podSelector"]["matchLabels"], pod_labels)
               for rule in policy["spec"]["ingress"] for src in rule["from"]), "the workers cannot reach Redis"


def test_ports_and_probe_paths_agree_with_the_config(docs):
    config = config_of(docs)
    container = worker_container(docs)
    deployment = worker_deployment(docs)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    metrics = next(p for p in container["ports"] if p.get("name") == "metrics")
    assert metrics["containerPort"] == config.worker.metrics_port
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        assert port_number(container, get["port"]) == config.worker.metrics_port, probe
    service = one(docs, "Service", "segment-export")
    assert selects(service["spec"]["selector"], pod_labels)
    assert any(port_number(container, p["targetPort"]) == config.worker.metrics_port
               for p in service["spec"]["ports"])
    monitor = one(docs, "PodMonitor", "segment-export")["spec"]
    assert selects(monitor["selector"]["matchLabels"], pod_labels)
    endpoint = monitor["podMetricsEndpoints"][0]
    assert port_number(container, endpoint["port"]) == config.worker.metrics_port
    assert endpoint["path"] == "/metrics"
    # The alert rules select job="segment-export": the PodMonitor takes the job from this pod label.
    assert pod_labels[monitor["jobLabel"]] == "segment-export"
    assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels)


def test_pod_drains_safely_and_runs_locked_down(docs):
    config = config_of(docs)
    deployment = worker_deployment(docs)
    pod = deployment["spec"]["template"]["spec"]
    container = worker_container(docs)
    assert "replicas" not in deployment["spec"], "KEDA owns the replica count"
    assert pod["terminationGracePeriodSeconds"] > config.worker.shutdown_grace_seconds + SHUTDOWN_CANCEL_WAIT
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] >= 1000
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"] and sc["capabilities"]["drop"] == ["ALL"]
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert writable == {"/tmp"}
    assert all("emptyDir" in volumes[m["name"]] for m in container["volumeMounts"] if m["mountPath"] in writable)
    resources = container["resources"]
    assert resources["requests"]["memory"] == "256Mi" and resources["limits"]["memory"] == "512Mi"
    assert resources["requests"]["cpu"]


def test_prune_job_reads_the_workers_config(docs):
    """The daily `state prune` sees the same config (so the same state_url and retention_days)."""
    job = one(docs, "CronJob", "segment-export-prune")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = job["containers"]
    assert container["command"][:3] == ["segment-export", "state", "prune"]
    worker = worker_container(docs)
    assert arg_value(container["command"], "--config") == arg_value(worker["args"], "--config")
    assert container["image"] == worker["image"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volume = next(v for v in job["volumes"] if v["name"] == mounts["/etc/segment-export"])
    assert volume["configMap"]["name"] == config_toml(docs)[0]["metadata"]["name"]
    assert container["securityContext"]["readOnlyRootFilesystem"] and job["securityContext"]["runAsNonRoot"]


def test_scaled_object_scales_the_worker_on_the_requests_queue(docs, overlay):
    config = config_of(docs)
    scaled = one(docs, "ScaledObject")["spec"]
    assert scaled["scaleTargetRef"]["name"] == worker_deployment(docs)["metadata"]["name"]
    assert scaled["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert 1 <= scaled["minReplicaCount"] < scaled["maxReplicaCount"]
    # While Redis is unreachable each replica takes 1/expected_replicas of the budget: with at most
    # expected_replicas replicas, together they stay inside it.
    assert scaled["maxReplicaCount"] <= config.worker.expected_replicas
    scale_down = scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert scale_down["stabilizationWindowSeconds"] >= 600 and scaled["cooldownPeriod"] >= 600
    assert scale_down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": scale_down["policies"][0]
                                       ["periodSeconds"]}], "scale down one replica at a time"
    [trigger] = scaled["triggers"]
    auth = one(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])["spec"]
    meta = trigger["metadata"]
    broker = urlsplit(config.worker.broker_url)
    if overlay == "rabbitmq":
        assert broker.scheme in ("amqp", "amqps")
        assert trigger["type"] == "rabbitmq" and meta["mode"] == "QueueLength"
        assert meta["queueName"] == config.worker.requests_queue
        assert int(meta["value"]) == config.worker.concurrency
        assert meta["vhostName"] == (broker.path[1:] or "/"), "KEDA counts another vhost than the worker uses"
        [host] = [r for r in auth["secretTargetRef"] if r["parameter"] == "host"]
        # The worker's own URL (with the password) comes from the same Secret, as --broker.
        container = worker_container(docs)
        broker_arg = arg_value(container["args"], "--broker")
        assert broker_arg and broker_arg.startswith("$(") and broker_arg.endswith(")")
        env = {e["name"]: e for e in container["env"]}
        ref = env[broker_arg[2:-1]]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == host["name"] and ref["key"] != host["key"]
    else:
        assert broker.scheme == "sqs" and not broker.username, "SQS credentials come from the pod's IAM role"
        assert trigger["type"] == "aws-sqs-queue" and meta["scaleOnInFlight"] == "true"
        assert int(meta["queueLength"]) == config.worker.concurrency
        queue_url = urlsplit(meta["queueURL"])
        assert queue_url.path.rsplit("/", 1)[1] == config.worker.requests_queue
        region = config.worker.broker_options["region"]
        assert meta["awsRegion"] == region and f".{region}." in queue_url.hostname
        env = {e["name"]: e.get("value") for e in worker_container(docs)["env"]}
        assert env["AWS_REGION"] == region
        assert auth["podIdentity"]["provider"] == "aws"
        sa = one(docs, "ServiceAccount", worker_deployment(docs)["spec"]["template"]["spec"]["serviceAccountName"])
        assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")


def test_prometheus_rule_is_rendered_into_the_overlay(docs):
    rule = one(docs, "PrometheusRule", "segment-export")
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert "SegmentExportWorkerDown" in alerts and len(alerts) == len(set(alerts))


def test_secret_names_are_documented(docs):
    """Every Secret the manifests reference is one README's Deploy section tells the operator to create."""
    readme = (ROOT / "README.md").read_text()
    assert "## Deploy" in readme, "README has no Deploy section"
    deploy = readme[readme.index("## Deploy"):]
    names: set[str] = set()
    for d in docs:
        if d["kind"] == "Deployment":
            pod = d["spec"]["template"]["spec"]
            names |= {v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
            for c in pod["containers"]:
                names |= {e["valueFrom"]["secretKeyRef"]["name"] for e in c.get("env", [])
                          if "secretKeyRef" in e.get("valueFrom", {})}
                names |= {e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e}
        if d["kind"] == "TriggerAuthentication":
            names |= {r["name"] for r in d["spec"].get("secretTargetRef", [])}
    assert names, "no Secret referenced: the API keys must come from one"
    missing = sorted(n for n in names if n not in deploy)
    assert not missing, f"README's Deploy section does not tell how to create: {missing}"
