"""One scenario's private world: a bucket, two proxies, a simulator, a broker topology and worker processes.

Why a world per scenario: a scenario cuts networks, kills processes and leaves faults behind; nothing it does
may reach another scenario (or another engineer's tests on the same RabbitMQ). So each one gets a bucket,
queue names and ports of its own, and every worker it starts reaches RabbitMQ and S3 only through proxies
that this scenario alone cuts. The harness side (publishing, reading events, listing run records) talks to
the servers directly, so it keeps seeing them during an outage.

The building blocks come from the end-to-end harness (``tests/e2e/conftest.py``): the simulator wrapper,
the RabbitMQ topology and its readers, the worker process and ``wait_for``. What differs here: the state
store and the snapshots are on S3 (moto), and the workers get their endpoints and credentials through the
environment, as in a deployment.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from chaos.proxy import TcpProxy
from tests.e2e.conftest import (
    API_KEY,
    KEY_ENV,
    ROOT,
    SEGMENT,
    ExportSpec,
    RabbitBroker,
    Sim,
    WorkerProc,
    free_port,
    run_id_for,
    validate,
    wait_for,
)
from worker.run.runbook import decode_part_header
from worker.sim import SimClient, SimSettings, SimulatorServer

#: Distinctive S3 credentials (moto accepts any): searched for in every log, event and metric.
S3_KEY_ID = "chaos-access-key-id"
S3_SECRET = "chaos-s3-secret-4f9a2c7e1b8d6053"
#: The shared RabbitMQ's account is guest/guest: "guest" alone is not searchable, the URL's userinfo is.
BROKER_SECRET = "guest:guest@"
SECRETS = {"API key": API_KEY, "S3 secret": S3_SECRET, "broker password": BROKER_SECRET}
AMQP_PORT = 5672
BATCH = 250  # contacts per bulk import


@dataclass(frozen=True)
class Size:
    """How big a suite run is: ``make chaos`` uses the defaults, the short form in ``make test`` much less."""

    profiles: int = 20_000
    rate_scale: float = 20.0  # the simulated account's budget (and the workers'), times ActiveCampaign's
    ac_outage_seconds: float = 120.0
    broker_outage_seconds: float = 15.0
    s3_outage_seconds: float = 20.0
    malformed: int = 1000
    sweeps: int = 100  # interleavings of the protocol sweep
    sweep_seed: int = 1  # its first seed (a failure names its own: replay it from there)

    @property
    def timeout(self) -> float:
        """Deadline for one run to complete (a generous bound, not an expectation)."""
        return 240.0 + self.profiles / 40


class WorkerDied(AssertionError):
    """A worker the scenario did not kill has exited."""


@dataclass
class ChaosWorker(WorkerProc):
    """The e2e worker process, with the deployment's environment (S3 endpoint and credentials) of its own."""

    env: dict[str, str] = field(default_factory=dict)
    metrics_port: int = 0
    killed: bool = False  # killed by the scenario (so not a crash)

    def start(self, wait_ready: bool = True, timeout: float = 90) -> ChaosWorker:
        import subprocess

        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(self.env, PYTHONUNBUFFERED="1")
        self._fh = open(self.log, "ab")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen([sys.executable, "-m", "worker", "--log-level", "INFO", "run", "--config",
                                      str(self.config)], cwd=ROOT, env=env, stdout=self._fh, stderr=self._fh,
                                     start_new_session=True)
        if wait_ready:
            self.wait_ready(timeout)
        return self


class ChaosBroker(RabbitBroker):
    """The e2e RabbitMQ topology; the workers are given ``worker_url`` (the proxy), the harness uses 5672."""

    def __init__(self, tag: str, worker_url: str) -> None:
        super().__init__(tag)
        self.worker_url = worker_url

    def worker_toml(self) -> str:
        return (f'broker_url = "{self.worker_url}"\nrequests_queue = "{self.requests_queue}"\n'
                f'events_exchange = "{self.events_exchange}"')

    def passive(self, queue: str) -> tuple[int, int] | None:
        """(messages ready, consumers) from a passive queue_declare, or None when the queue does not exist."""
        from amqp.exceptions import NotFound  # type: ignore[import-untyped]
        from kombu import Connection

        with Connection(self.url) as conn:
            try:
                _, ready, consumers = conn.channel().queue_declare(queue=queue, passive=True)
            except NotFound:
                return None
        return int(ready), int(consumers)

    def cleanup(self) -> None:
        from kombu import Connection

        super().cleanup()
        with Connection(self.url) as conn:
            for q in self.topology().delay_queues():
                with contextlib.suppress(Exception):
                    conn.channel().queue_delete(queue=q)


class Stage:
    """Everything one scenario runs against; ``close()`` removes it all."""

    def __init__(self, name: str, moto_endpoint: str, size: Size, workdir: Path) -> None:
        import boto3

        self.name, self.size = name, size
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self._closers: list[Callable[[], None]] = []
        self.s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                               aws_access_key_id=S3_KEY_ID, aws_secret_access_key=S3_SECRET)
        self.bucket = f"chaos-{name}-{uuid.uuid4().hex[:8]}"[:63]
        self.s3.create_bucket(Bucket=self.bucket)
        self._closers.append(self._delete_bucket)
        self.s3_proxy = TcpProxy(int(moto_endpoint.rsplit(":", 1)[1]))
        self.amqp_proxy = TcpProxy(AMQP_PORT)
        self._closers += [self.s3_proxy.close, self.amqp_proxy.close]
        settings = SimSettings(api_keys=(API_KEY,), rate_scale=size.rate_scale, processing_delay=0.2, seed=7)
        server = SimulatorServer(settings)
        server.start()
        self._closers.append(server.stop)
        self.sim = Sim(server.url, SimClient(server.url), size.rate_scale)
        self.broker = ChaosBroker(f"chaos-{name}-{uuid.uuid4().hex[:6]}",
                                  f"amqp://guest:guest@127.0.0.1:{self.amqp_proxy.port}//")
        self._closers.append(self.broker.cleanup)
        self.workers: list[ChaosWorker] = []
        #: run id -> what its one completion event must say: "succeeded" or an export.failed error code.
        self.runs: dict[str, str] = {}
        #: list id -> email -> profile: the people who must be subscribed at the end, and nobody else.
        self.expected: dict[int, dict[str, dict]] = {}
        self.expected_dead: Counter[bytes] = Counter()  # bodies that must end in the dead-letter queue
        self.failed_checks: list[str] = []
        self.notes: list[str] = []

    # ------------------------------------------------------------------------------------ config, workers
    def config(self, *, exports: list[ExportSpec] | None = None, worker: dict[str, Any] | None = None,
               rate_scale: float | None = None, name: str = "worker.toml") -> Path:
        """A worker config: state and snapshots on S3, RabbitMQ through the proxy; ``rate_scale`` sets the
        worker's own budget (default: the simulated account's)."""
        exports = exports or [ExportSpec("vip", 3)]
        scale = rate_scale or self.size.rate_scale
        keys: dict[str, Any] = {"state_url": f"s3://{self.bucket}/state", "metrics_port": free_port(),
                                "snapshot_prefixes": [f"s3://{self.bucket}/snapshots/"],
                                "run_retry_base_seconds": 1, "max_run_attempts": 8, **(worker or {})}
        lines = [self.broker.worker_toml(), *(f"{k} = {_toml(v)}" for k, v in keys.items())]
        blocks = "".join(f"""
[exports.{e.name}]
segment = "{e.segment}"
connection = "sim"
list_id = {e.list_id}
mapping = {{ email = "EmailAddress", first_name = "FirstName", last_name = "LastName", phone = "Phone" }}
{e.extra}
""" for e in exports)
        path = self.dir / name
        path.write_text(f"""[worker]
{chr(10).join(lines)}

[connections.sim]
hostname = "sim.api-us1.com"
base_url = "{self.sim.url}"
api_key_env = "{KEY_ENV}"
data_privacy_consent = true
requests_per_second = {5 * scale}
bulk_requests_per_minute = {100 * scale}
{blocks}""")
        return path

    def start_worker(self, config: Path) -> ChaosWorker:
        import tomllib

        port = tomllib.loads(config.read_text())["worker"]["metrics_port"]
        env = {KEY_ENV: API_KEY, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.s3_proxy.port}",
               "AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_SECRET, "AWS_DEFAULT_REGION": "us-east-1"}
        w = ChaosWorker(config, self.dir / f"worker-{len(self.workers)}.log", env=env, metrics_port=port)
        self.workers.append(w)
        return w.start()

    def kill(self, w: ChaosWorker) -> None:
        """kill -9, by the scenario (not counted as a crash)."""
        w.killed = True
        w.kill()

    def check_alive(self) -> None:
        for w in self.workers:
            if not w.killed and not w.alive():
                raise WorkerDied(f"worker {w.pid} exited with {w.proc.returncode}:\n{w.tail(30)}")

    def wait(self, predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
        """Wait for a condition with a deadline, failing at once if a worker dies."""
        return wait_for(predicate, timeout, what, interval=interval, check=self.check_alive)

    def eventually(self, predicate: Callable[[], Any], timeout: float, interval: float = 0.2) -> bool:
        """Whether a condition came true before the deadline (for checks that must not end the scenario)."""
        try:
            self.wait(predicate, timeout, "a check", interval=interval)
        except WorkerDied:
            raise
        except AssertionError:
            return False
        return True

    def hold(self, seconds: float) -> None:
        """Let a fault last ``seconds`` (its length is the scenario's choice), watching the workers meanwhile."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.check_alive()
            time.sleep(min(0.5, max(0.0, end - time.monotonic())))

    # ------------------------------------------------------------------------------------ snapshots, events
    def put_snapshot(self, name: str, profiles: Iterable[dict]) -> str:
        key = f"snapshots/{name}.jsonl"
        # no rows: one blank line, a whole file (0 bytes is refused as a part cut short, before the guard)
        body = b"".join(orjson.dumps(p) + b"\n" for p in profiles) or b"\n"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        return f"s3://{self.bucket}/{key}"

    def refreshed(self, uri: str, refresh_id: str, segment: str = SEGMENT) -> dict:
        from worker.events.envelopes import now_iso

        return validate({"type": "segment.refreshed", "version": 1, "id": str(uuid.uuid4()),
                         "occurred_at": now_iso(), "segment": {"id": segment}, "refresh_id": refresh_id,
                         "snapshot": {"uri": uri, "format": "jsonl"}})

    def publish_refresh(self, uri: str, refresh_id: str, *, export: str = "vip", segment: str = SEGMENT,
                        outcome: str = "succeeded") -> str:
        """Publish a refresh; the run it causes must end with one completion event saying ``outcome``."""
        run_id = run_id_for(export, refresh_id)
        self.runs[run_id] = outcome
        self.broker.publish(self.refreshed(uri, refresh_id, segment))
        return run_id

    def outcomes(self, run_id: str) -> list[dict]:
        """Every completion event (export.completed or export.failed) published so far for ``run_id``."""
        self.broker.read_events()
        return [e for e in self.broker.events if e["type"] in ("export.completed", "export.failed")
                and e["run_id"] == run_id]

    def wait_run(self, run_id: str, timeout: float | None = None) -> dict:
        """The run's first completion event, once it is published."""
        found = self.wait(lambda: self.outcomes(run_id), timeout or self.size.timeout,
                          f"a completion event for run {run_id}", interval=0.5)
        return found[0]

    # ------------------------------------------------------------------------------------ run records
    def _keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(o["Key"] for o in page.get("Contents", []))
        return keys

    def records(self, export: str, run_id: str) -> tuple[int, int, int]:
        """(plan parts, accepted batches, final batches) the run has recorded in the state store."""
        keys = self._keys(f"state/exports/{export}/runs/{run_id}/")
        return (sum("/part-" in k for k in keys), sum(k.endswith(".accepted") for k in keys),
                sum(k.endswith(".final") for k in keys))

    def planned_batches(self, export: str, run_id: str) -> int:
        total = 0
        for key in (k for k in self._keys(f"state/exports/{export}/runs/{run_id}/") if "/part-" in k):
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            total += len(decode_part_header(body)["batches"])
        return total

    def resent(self, list_id: int = 3) -> int:
        """Contacts ActiveCampaign accepted more than once in bulk imports, for a first sync of ``list_id``
        (which sends every expected contact exactly once when nothing is re-sent)."""
        return sum(r["contacts"] for r in self.sim.bulk_posts()) - len(self.expected[list_id])

    def synced_exists(self, export: str) -> bool:
        return bool(self._keys(f"state/exports/{export}/synced"))

    # ------------------------------------------------------------------------------------ checks
    def check(self, ok: bool, what: str) -> bool:
        """A scenario-specific expectation; a failed one makes the row unclean."""
        if not ok:
            self.failed_checks.append(what)
        return ok

    def note(self, text: str) -> None:
        self.notes.append(text)

    def scrape(self, w: ChaosWorker) -> str:
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{w.metrics_port}/metrics", timeout=10) as resp:
            return str(resp.read().decode())

    def readyz(self, w: ChaosWorker) -> int:
        import urllib.error
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"http://127.0.0.1:{w.metrics_port}/readyz", timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return 0

    # ------------------------------------------------------------------------------------ teardown
    def _delete_bucket(self) -> None:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            for i in range(0, len(objects), 1000):
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": objects[i:i + 1000]})
        self.s3.delete_bucket(Bucket=self.bucket)

    def close(self) -> None:
        for w in self.workers:
            w.close()
        problems = []
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception as exc:
                problems.append(f"{getattr(closer, '__qualname__', closer)}: {exc!r}")
        if problems:
            sys.stderr.write(f"chaos {self.name}: cleanup problems: {'; '.join(problems)}\n")


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return orjson.dumps(v).decode()
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {v!r}")
