"""Issue 17: the HTTP ingress in both overlays: its Deployment runs ``segment-export ingress`` on the workers'
config and broker, reads its tokens from a read-only Secret volume the config names, serves and probes the
config's port, and the Service and the (TLS) Ingress route to it. The objects are validated with the
others (``test_overlays.test_renders_and_core_objects_validate``)."""

from __future__ import annotations

import posixpath

from tests.deploy.manifests import ROOT, arg_value, config_toml, load_toml, one, port_number, selects, worker_container
from worker.settings import parse_config


def _ingress(docs: list) -> tuple[dict, dict, dict]:
    deployment = one(docs, "Deployment", "segment-export-ingress")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    return deployment, pod, container


def test_the_ingress_runs_on_the_workers_config_and_broker(docs, overlay):
    _, key, text = config_toml(docs)
    config = parse_config(load_toml(text), key)
    deployment, pod, container = _ingress(docs)
    worker = worker_container(docs)
    assert container["command"] == ["segment-export", "ingress"]
    assert container["image"] == worker["image"]
    assert arg_value(container["args"], "--config") == arg_value(worker["args"], "--config")
    config_volume = next(v for v in pod["volumes"] if v["name"] == "config")
    assert config_volume["configMap"]["name"] == config_toml(docs)[0]["metadata"]["name"]
    if overlay == "rabbitmq":  # the same broker URL, from the same Secret, as the workers
        assert arg_value(container["args"], "--broker") == arg_value(worker["args"], "--broker")
        env = {e["name"]: e for e in container["env"]}
        worker_env = {e["name"]: e for e in worker["env"]}
        name = arg_value(container["args"], "--broker")[2:-1]
        assert env[name]["valueFrom"] == worker_env[name]["valueFrom"]
    # tokens: the config's tokens_file is a key of a Secret volume mounted read-only
    folder, name = posixpath.split(config.ingress.tokens_file)
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == folder)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert mount["readOnly"] and volume["secret"]["secretName"] == "segment-export-ingress" and name == "tokens"
    # port, probes, Service, Ingress
    assert port_number(container, "http") == config.ingress.port
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = one(docs, "Service", "segment-export-ingress")
    assert selects(service["spec"]["selector"], labels)
    assert not selects(one(docs, "Service", "segment-export")["spec"]["selector"], labels)  # not a worker
    [port] = service["spec"]["ports"]
    assert port_number(container, port["targetPort"]) == config.ingress.port
    ingress = one(docs, "Ingress", "segment-export-ingress")["spec"]
    [rule] = ingress["rules"]
    [path] = rule["http"]["paths"]
    assert path["path"] == "/events" and path["backend"]["service"]["name"] == "segment-export-ingress"
    assert rule["host"] in ingress["tls"][0]["hosts"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
    assert pod["securityContext"]["runAsNonRoot"]


def test_the_ingress_secrets_are_documented():
    deploy = (ROOT / "README.md").read_text().split("## Deploy", 1)[1]
    assert "segment-export-ingress" in deploy and "segment-export-ingress-tls" in deploy
