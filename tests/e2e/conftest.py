"""End-to-end harness: a real broker (RabbitMQ on 127.0.0.1:5672 or moto's SQS), the worker as a real
subprocess (``python -m worker run``) so it can be killed, and the ActiveCampaign simulator in this
process over HTTP.

Everything here waits with deadlines and checks outcomes (list contents, queue contents, events), never
timing. Every broker object a test creates has a unique name and is deleted at teardown; every worker
process is killed at teardown and, when the test failed, the tail of its log is printed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.waiting import wait_for as wait_for  # re-exported: the suites take it from here
from worker.sim import SimClient, SimSettings, SimulatorServer

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "e2e-key-5d0c3b9a8f7e6d5c4b3a2f1e"  # distinctive: searched for in every log
KEY_ENV = "SEGMENT_EXPORT_E2E_KEY"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
SEGMENT = "vip-customers"
PAGE = 5000  # the engine's page size (profiles per plan part)
BATCH = 250  # contacts per bulk import


# ------------------------------------------------------------------------------------------ waiting

# ------------------------------------------------------------------------------------------ failure hook

@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def _failed(request: pytest.FixtureRequest) -> bool:
    rep = getattr(request.node, "rep_call", None)
    return rep is None or rep.failed


# ------------------------------------------------------------------------------------------ simulator

@dataclass
class Sim:
    url: str
    client: SimClient
    rate_scale: float

    def bulk_posts(self, status: int | None = 200) -> list[dict]:
        return [r for r in self.client.requests() if r["method"] == "POST"
                and r["path"].endswith("/import/bulk_import") and (status is None or r["status"] == status)]

    def in_flight(self) -> list[dict]:
        return [r for r in self.client.requests() if r["status"] == 0]

    def subscribed(self, list_id: int) -> dict[str, dict]:
        return {e: m for e, m in self.client.members(list_id).items() if m["status"] == "subscribed"}

    def assert_list_exact(self, list_id: int, expected: dict[str, dict]) -> None:
        """The list holds exactly the expected people as subscribed, with their names and phones."""
        members = self.subscribed(list_id)
        missing = set(expected) - set(members)
        extra = set(members) - set(expected)
        assert not missing and not extra, (f"list {list_id}: {len(missing)} missing (e.g. {sorted(missing)[:3]}), "
                                           f"{len(extra)} unexpected (e.g. {sorted(extra)[:3]})")
        for email, p in expected.items():
            m = members[email]
            assert (m["first_name"], m["last_name"], m["phone"]) == (p["FirstName"], p["LastName"], p["Phone"]), email


@pytest.fixture
def sim_settings() -> SimSettings:
    """Fast by default (rate_scale 20); a test that needs slowness reconfigures the running simulator."""
    return SimSettings(api_keys=(API_KEY,), rate_scale=20.0, processing_delay=0.2)


@pytest.fixture
def sim(sim_settings: SimSettings) -> Iterator[Sim]:
    with SimulatorServer(sim_settings) as server:
        yield Sim(server.url, SimClient(server.url), sim_settings.rate_scale)


@pytest.fixture(autouse=True)
def _api_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, API_KEY)


# ------------------------------------------------------------------------------------------ brokers

def validate(event: dict) -> dict:
    from worker.events.schemas import validate_event

    validate_event(event)
    return event


class Broker:
    """One test's private topology on a real broker, plus the tools to feed and observe it."""

    kind: str
    url: str

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.requests_queue = f"e2e-{tag}-requests"
        self.events_exchange = f"e2e-{tag}-events"
        self.events: list[dict] = []  # every event read so far (validated), in arrival order
        self.dead: list[tuple[bytes, dict]] = []  # every DLQ message read so far (body, headers)

    @property
    def dlq(self) -> str:
        return f"{self.requests_queue}-dlq"

    def topology(self, max_receive_count: int = 5):
        from worker.broker import Topology

        return Topology(requests_queue=self.requests_queue, events_exchange=self.events_exchange,
                        max_receive_count=max_receive_count)

    # config -----------------------------------------------------------------------------------------
    broker_options: dict[str, Any]

    def worker_toml(self) -> str:
        lines = [f'broker_url = "{self.url}"', f'requests_queue = "{self.requests_queue}"',
                 f'events_exchange = "{self.events_exchange}"']
        if self.broker_options:
            lines.append("broker_options = " + _toml_inline(self.broker_options))
        return "\n".join(lines)

    # feeding ----------------------------------------------------------------------------------------
    def publish(self, event: dict) -> None:
        """A valid request event through the project's own one-shot publisher."""
        from worker.broker import publish_once, transport_options_for

        validate(event)
        publish_once(self.url, self.topology(), orjson.dumps(event), to="requests",
                     transport_options=transport_options_for(self.url, **self.broker_options))

    def publish_raw(self, bodies: list[bytes]) -> None:
        raise NotImplementedError

    # observing --------------------------------------------------------------------------------------
    events_source: str  # the queue this test reads completion events from

    def _get_all(self, queue: str) -> list[tuple[bytes, dict]]:
        """Take every message now on `queue`: (body, headers)."""
        raise NotImplementedError

    def read_events(self) -> list[dict]:
        for body, _ in self._get_all(self.events_source):
            self.events.append(validate(orjson.loads(body)))
        return self.events

    def read_dead(self) -> list[tuple[bytes, dict]]:
        self.dead.extend(self._get_all(self.dlq))
        return self.dead

    def depth(self) -> tuple[int, int]:
        """(ready, held) messages on the requests queue."""
        raise NotImplementedError

    # conveniences -----------------------------------------------------------------------------------
    def completions(self, run_id: str | None = None, export: str | None = None) -> list[dict]:
        self.read_events()
        return [e for e in self.events if e["type"] == "export.completed"
                and (run_id is None or e["run_id"] == run_id) and (export is None or e["export"] == export)]

    def wait_completions(self, n: int, timeout: float, *, check: Callable[[], None] | None = None,
                         **match: Any) -> list[dict]:
        def enough() -> list[dict] | None:
            self.read_events()
            failed = [e for e in self.events if e["type"] == "export.failed"]
            assert not failed, f"export.failed published: {failed}"
            got = self.completions(**match)
            return got if len(got) >= n else None

        return wait_for(enough, timeout, f"{n} export.completed {match or ''}", interval=0.2, check=check)

    def wait_idle(self, timeout: float, check: Callable[[], None] | None = None) -> None:
        """Until the requests queue is empty and nothing is held: every event the worker will publish for
        what was queued has been published (it publishes, with confirms, before it acks)."""
        wait_for(lambda: self.depth() == (0, 0), timeout, "the requests queue to drain (ready and held = 0)",
                 interval=0.3, check=check)

    def cleanup(self) -> None:
        raise NotImplementedError


def _toml_inline(d: dict[str, Any]) -> str:
    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, dict):
            return _toml_inline(v)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(val(x) for x in v) + "]"
        raise TypeError(v)

    return "{ " + ", ".join(f"{k} = {val(v)}" for k, v in d.items()) + " }"


class RabbitBroker(Broker):
    kind = "amqp"

    def __init__(self, tag: str) -> None:
        from kombu import Connection

        super().__init__(tag)
        self.url = AMQP_URL
        self.broker_options = {}
        self.tap = f"e2e-{tag}-tap"
        self.events_source = self.tap  # our queue bound to the events exchange
        self.conn = Connection(self.url, transport_options={"client_properties": {"connection_name": "e2e-tests"}})
        self.conn.connect()
        self.channel = self.conn.channel()
        # The worker's own topology (same arguments as the worker declares), then our tap on the exchange.
        from worker.broker.connection import make_driver, open_connection
        from worker.broker.options import transport_options_for

        c = open_connection(self.url, transport_options_for(self.url))
        driver = make_driver(c, self.topology(), prefetch=1, visibility_timeout=120)
        try:
            driver.declare()
        finally:
            driver.close()
        self.channel.queue_declare(queue=self.tap, durable=False, auto_delete=False)
        self.channel.queue_bind(queue=self.tap, exchange=self.events_exchange, routing_key="#")

    def _get_all(self, queue: str) -> list[tuple[bytes, dict]]:
        out = []
        while True:
            msg = self.channel.basic_get(queue=queue, no_ack=True)
            if msg is None:
                return out
            body = msg.body if isinstance(msg.body, bytes) else str(msg.body).encode()
            out.append((body, dict(msg.properties.get("application_headers") or {})))

    def publish_raw(self, bodies: list[bytes]) -> None:
        """Bodies exactly as given (malformed ones too), to the requests queue through the default exchange.

        Each publish waits for the broker's confirm (``confirm_publish``): a channel closed right after
        publishing, with confirms selected but not awaited, lost the last few bodies now and then (seven of
        1,002 in one chaos run; the queue is a quorum queue)."""
        from kombu import Connection, Producer

        with Connection(self.url, transport_options={"confirm_publish": True}) as conn:
            producer = Producer(conn.channel(), auto_declare=False)
            for body in bodies:
                producer.publish(body, exchange="", routing_key=self.requests_queue, content_type="application/json",
                                 content_encoding="binary", delivery_mode=2, retry=False)

    def depth(self) -> tuple[int, int]:
        """Live counts from the quorum queue itself (``rabbitmqctl list_queues`` lags by its 5 s stats interval,
        which would let a wait for an idle queue pass while a message is still held)."""
        expr = ('{ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"/">>, queue, <<"QUEUE">>)), '
                '{RaName, _} = amqqueue:get_pid(Q), '
                '{ok, {_, R}, _} = ra:local_query({RaName, node()}, fun rabbit_fifo:query_messages_ready/1), '
                '{ok, {_, C}, _} = ra:local_query({RaName, node()}, fun rabbit_fifo:query_messages_checked_out/1), '
                '{R, C}.').replace("QUEUE", self.requests_queue)
        out = subprocess.run(["rabbitmqctl", "eval", expr], capture_output=True, text=True, timeout=60)
        m = re.fullmatch(r"\{(\d+),(\d+)\}", out.stdout.strip())
        assert m, f"cannot read the depth of {self.requests_queue}: {out.stdout[-300:]} {out.stderr[-300:]}"
        return int(m.group(1)), int(m.group(2))

    def cleanup(self) -> None:
        from kombu import Connection

        with contextlib.suppress(Exception):
            self.conn.release()
        problems = []
        with Connection(self.url) as conn:
            for q in (self.requests_queue, self.dlq, self.tap, *self.topology().delay_queues()):
                try:
                    conn.channel().queue_delete(queue=q)
                except Exception as exc:
                    problems.append(f"queue {q}: {exc!r}")
            for x in (self.events_exchange, self.dlq):
                try:
                    conn.channel().exchange_delete(exchange=x)
                except Exception as exc:
                    problems.append(f"exchange {x}: {exc!r}")
        if problems:
            sys.stderr.write("e2e cleanup problems: " + "; ".join(problems) + "\n")


class SqsBroker(Broker):
    kind = "sqs"

    def __init__(self, tag: str, endpoint: str, *, visibility_timeout: int | None = None,
                 max_receive_count: int = 5) -> None:
        import boto3

        super().__init__(tag)
        port = endpoint.rsplit(":", 1)[1]
        self.url = f"sqs://testing:testing@127.0.0.1:{port}"
        self.events_source = self.events_exchange  # on SQS the events "exchange" is a queue
        self.broker_options = {"region": "us-east-1", "is_secure": False, "wait_time_seconds": 0,
                               "polling_interval": 0.1}
        if visibility_timeout is not None:
            self.broker_options["visibility_timeout"] = visibility_timeout
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
        self.urls: dict[str, str] = {}
        if visibility_timeout is not None:
            # Infrastructure-owned queues (the worker leaves existing queues as they are): a short
            # visibility timeout, so only the worker's heartbeat can keep a held message hidden.
            attrs = {"VisibilityTimeout": str(visibility_timeout)}
            dlq_url = self.sqs.create_queue(QueueName=self.dlq, Attributes=attrs)["QueueUrl"]
            arn = self.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            redrive = orjson.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": str(max_receive_count)}).decode()
            self.sqs.create_queue(QueueName=self.requests_queue, Attributes={**attrs, "RedrivePolicy": redrive})
            self.sqs.create_queue(QueueName=self.events_exchange, Attributes=attrs)
        else:
            from worker.broker.connection import make_driver, open_connection
            from worker.broker.options import transport_options_for

            opts = transport_options_for(self.url, **self.broker_options)
            c = open_connection(self.url, opts)
            driver = make_driver(c, self.topology(max_receive_count), prefetch=1, visibility_timeout=120)
            try:
                driver.declare()
            finally:
                driver.close()

    def url_of(self, name: str) -> str:
        if name not in self.urls:
            self.urls[name] = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        return self.urls[name]

    def publish_raw(self, bodies: list[bytes]) -> None:
        url = self.url_of(self.requests_queue)
        for i in range(0, len(bodies), 10):
            entries = [{"Id": str(j), "MessageBody": b.decode("utf-8")} for j, b in enumerate(bodies[i:i + 10])]
            resp = self.sqs.send_message_batch(QueueUrl=url, Entries=entries)
            assert not resp.get("Failed"), resp["Failed"]

    def _get_all(self, queue: str) -> list[tuple[bytes, dict]]:
        url = self.url_of(queue)
        out = []
        while True:
            resp = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                            MessageAttributeNames=["All"], AttributeNames=["All"])
            msgs = resp.get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                headers = {k: v.get("StringValue", v.get("BinaryValue"))
                           for k, v in (m.get("MessageAttributes") or {}).items()}
                out.append((m["Body"].encode("utf-8"), headers))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def depth(self) -> tuple[int, int]:
        a = self.sqs.get_queue_attributes(QueueUrl=self.url_of(self.requests_queue), AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])

    def cleanup(self) -> None:
        for q in (self.requests_queue, self.dlq, self.events_exchange):
            with contextlib.suppress(Exception):
                self.sqs.delete_queue(QueueUrl=self.url_of(q))


@pytest.fixture
def rabbit() -> Iterator[RabbitBroker]:
    b = RabbitBroker(uuid.uuid4().hex[:10])
    try:
        yield b
    finally:
        b.cleanup()


@pytest.fixture
def make_sqs(moto_server: str) -> Iterator[Callable[..., SqsBroker]]:
    made: list[SqsBroker] = []

    def make(**kw: Any) -> SqsBroker:
        b = SqsBroker(uuid.uuid4().hex[:10], moto_server, **kw)
        made.append(b)
        return b

    try:
        yield make
    finally:
        for b in made:
            b.cleanup()


@pytest.fixture(params=["rabbitmq", "sqs"])
def broker(request: pytest.FixtureRequest) -> Broker:
    """Parametrized over both brokers; SQS tests should keep message counts in the hundreds."""
    if request.param == "rabbitmq":
        return request.getfixturevalue("rabbit")
    return request.getfixturevalue("make_sqs")()


# ------------------------------------------------------------------------------------------ config

@dataclass
class ExportSpec:
    name: str
    list_id: int
    segment: str = SEGMENT
    extra: str = ""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp_path: Path, sim: Sim, broker: Broker, *, exports: list[ExportSpec] | None = None,
                 worker: str = "", name: str = "worker.toml", rate_scale: float | None = None) -> Path:
    """A worker config on ``broker`` and ``sim``; ``rate_scale`` sets the worker's own budget (default: the
    simulator's), e.g. lower to make runs slow without the simulator refusing anything."""
    exports = exports or [ExportSpec("vip", 3)]
    scale = rate_scale or sim.rate_scale
    blocks = [f"""
[exports.{e.name}]
segment = "{e.segment}"
connection = "sim"
list_id = {e.list_id}
mapping = {{ email = "EmailAddress", first_name = "FirstName", last_name = "LastName", phone = "Phone" }}
{e.extra}
""" for e in exports]
    path = tmp_path / name
    path.write_text(f"""
[worker]
{broker.worker_toml()}
state_url = "file://{tmp_path / 'state'}"
metrics_port = {free_port()}
snapshot_prefixes = ["file://{tmp_path}/"]
{worker}

[connections.sim]
hostname = "sim.api-us1.com"
base_url = "{sim.url}"
api_key_env = "{KEY_ENV}"
data_privacy_consent = true
requests_per_second = {5 * scale}
bulk_requests_per_minute = {100 * scale}
{''.join(blocks)}
""")
    return path


def refreshed(snapshot: Path, *, refresh_id: str | None = None, occurred_at: str | None = None,
              segment: str = SEGMENT, event_id: str | None = None) -> dict:
    """A valid segment.refreshed event for a local JSON Lines snapshot."""
    from worker.events.envelopes import now_iso

    return validate({"type": "segment.refreshed", "version": 1, "id": event_id or str(uuid.uuid4()),
                     "occurred_at": occurred_at or now_iso(), "segment": {"id": segment},
                     "refresh_id": refresh_id or f"r-{uuid.uuid4().hex[:12]}",
                     "snapshot": {"uri": f"file://{snapshot}", "format": "jsonl"}})


def run_id_for(export: str, refresh_id: str) -> str:
    from worker.run.runbook import run_id_for as rid

    return rid(export, refresh_id)


def run_dir(tmp_path: Path, export: str, run_id: str) -> Path:
    return tmp_path / "state" / "exports" / export / "runs" / run_id


def records(tmp_path: Path, export: str, run_id: str) -> tuple[int, int, int]:
    """(plan parts, accepted batches, final batches) recorded for a run."""
    d = run_dir(tmp_path, export, run_id)
    return (len(list(d.glob("**/part-*"))), len(list(d.glob("**/*.accepted"))),  # any plan's records
            len(list(d.glob("**/*.final"))))


# ------------------------------------------------------------------------------------------ worker processes

@dataclass
class WorkerProc:
    config: Path
    log: Path
    proc: subprocess.Popen = field(init=False)

    def start(self, wait_ready: bool = True, timeout: float = 60) -> WorkerProc:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env[KEY_ENV] = API_KEY
        self._fh = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "worker", "--log-level", "INFO", "run", "--config",
                                      str(self.config)], cwd=ROOT, env=env, stdout=self._fh, stderr=self._fh,
                                     start_new_session=True)
        if wait_ready:
            self.wait_ready(timeout)
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.text().splitlines()[-n:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def assert_alive(self) -> None:
        if not self.alive():
            raise AssertionError(f"worker {self.pid} exited with {self.proc.returncode}:\n{self.tail()}")

    def wait_ready(self, timeout: float = 60) -> None:
        wait_for(lambda: "worker consuming" in self.text(), timeout, "the worker to start consuming",
                 check=self.assert_alive)

    def kill(self) -> None:
        """SIGKILL, and wait for it to be gone."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=20)
        with contextlib.suppress(Exception):
            self._fh.close()


@pytest.fixture
def workers(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., WorkerProc]]:
    """Factory: ``workers(config)`` starts a worker process (waiting until it consumes) and returns it.

    At teardown every process is killed; when the test failed the tail of each log is printed, and in
    any case no log may contain the API key.
    """
    started: list[WorkerProc] = []

    def start(config: Path, *, wait_ready: bool = True) -> WorkerProc:
        w = WorkerProc(config, tmp_path / f"worker-{len(started)}.log")
        started.append(w)
        return w.start(wait_ready=wait_ready)

    try:
        yield start
    finally:
        for w in started:
            w.close()
        if _failed(request):
            for i, w in enumerate(started):
                sys.stderr.write(f"\n----- worker {i} (pid {w.pid}, exit {w.proc.returncode}) log tail -----\n"
                                 f"{w.tail(80)}\n")
    leaked = [w.log.name for w in started if API_KEY in w.text()]
    assert not leaked, f"the API key appears in {leaked}"


# ------------------------------------------------------------------------------------------ RabbitMQ connections

def amqp_connections_of(pid: int) -> list[str]:
    """RabbitMQ connection pids (for ``rabbitmqctl close_connection``) opened by OS process ``pid``."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", "dport", "= :5672"], capture_output=True,
                         text=True, timeout=30).stdout
    ports = set()
    for line in out.splitlines():
        if f"pid={pid}," in line:
            local = line.split()[2] if len(line.split()) >= 5 else ""
            m = re.search(r":(\d+)$", local)
            if m:
                ports.add(m.group(1))
    if not ports:
        return []
    listing = subprocess.run(["rabbitmqctl", "list_connections", "-q", "--no-table-headers", "pid", "peer_port"],
                             capture_output=True, text=True, timeout=60).stdout
    found = []
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] in ports:
            found.append(parts[0])
    return found


def close_amqp_connections(conn_pids: list[str]) -> None:
    for cp in conn_pids:
        subprocess.run(["rabbitmqctl", "close_connection", cp, "e2e test: connection cut"], capture_output=True,
                       timeout=60, check=True)
