"""Several `segment-export run` replicas on one broker, one state store and (optionally) one Redis, against
simulated ActiveCampaign accounts: the accounts, the replicas' configs, and the figures read back.

Why one simulator per account: AC's budgets are per account, and an account is a host; each simulator
has its own rate windows, so two of them are two accounts with a budget each. Every account gets a host
name no other test uses (the shared limiter keys its Redis schedule by host name) and every export a
name no other test uses (the export lease is keyed by export name), so tests on the shared Redis never
share a budget or a lease.

The simulators run as processes of their own (see `SimProcess`); their request logs are stamped on the
system's monotonic clock, so ``time.monotonic()`` here is comparable with every entry's ``at``.
"""

from __future__ import annotations

import math
import os
import select
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from tests.e2e.conftest import API_KEY, KEY_ENV, ROOT, Broker, WorkerProc, free_port, wait_for
from tests.service.support import parse, value
from worker.contacts.samples import Segment, email_of, make_segment, write_jsonl
from worker.sim import SimClient, SimSettings

RATE_SCALE = 20.0  # the simulators' budgets: 20x AC's (100 requests/s, 2000 bulk imports/min)
BATCH = 250  # contacts per bulk import (the planner's maximum)
PAGE = 5000  # the engine's page size: batches never span pages
BULK_PATH = "/api/3/import/bulk_import"
LAUNCHER = Path(__file__).with_name("sim_launcher.py")
MAPPING = '{ email = "EmailAddress", first_name = "FirstName", last_name = "LastName", phone = "Phone" }'


# ------------------------------------------------------------------------------------------ accounts

class SimProcess:
    """The simulator in a process of its own (``python -m worker simulate``), shaped by ``settings``.

    Why not in the test process: at these sizes the test process holds hundreds of thousands of profiles
    (the expected lists) and a simulator holds as many contacts; sharing one interpreter, a garbage
    collection or the other simulator's work stalls a simulator's event loop for a second or more, and
    the requests queued meanwhile are stamped as one burst, which its per-second window then refuses.
    That measures the harness, not the replicas. Its own process keeps its clock honest (`sim_launcher`
    keeps its own garbage collector from stalling it too); the monotonic clock it stamps the request log
    with is the system's, the same as this process's.
    """

    def __init__(self, settings: SimSettings, log: Path, timeout: float = 30.0) -> None:
        self.settings = settings
        args = [sys.executable, str(LAUNCHER), "--port", "0", "--rate-scale", str(settings.rate_scale),
                "--processing-delay", str(settings.processing_delay),
                *(a for key in settings.api_keys for a in ("--api-key", key)),
                *(("--seed", str(settings.seed)) if settings.seed is not None else ())]
        self._log = log.open("wb")
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._log, cwd=ROOT,
                                        env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the simulator did not start: {log.read_text()[-2000:]}")
        self.url = line
        SimClient(self.url).configure(lists={str(k): v for k, v in settings.lists.items()})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@dataclass
class Account:
    """One simulated ActiveCampaign account (a simulator of its own) and the connection that reaches it."""

    connection: str
    hostname: str
    server: SimProcess
    client: SimClient
    rps: float  # the connection's budget (the simulator's, unless a test wants runs slower)
    bulk_per_minute: float

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def account_keys(self) -> list[str]:
        """What the shared limiter may key this account's Redis schedule by: the host name, or the
        simulator's host:port (the engine keys a base_url account by it)."""
        return [self.hostname, urlsplit(self.url).netloc]

    @property
    def ceiling(self) -> float:
        """The account's bulk imports per minute (the simulator's window, which the connection matches)."""
        return self.server.settings.effective_bulk_per_minute

    def requests(self) -> list[dict[str, Any]]:
        return self.client.requests()

    def accepted_posts(self) -> list[float]:
        """Arrival times of the bulk imports this account accepted."""
        return sorted(r["at"] for r in self.requests()
                      if r["method"] == "POST" and r["path"] == BULK_PATH and r["status"] == 200)

    def refused_at(self) -> list[float]:
        """Arrival times of the requests refused for rate (429, or a bulk import answered 400: the
        simulator's only 400 to a well-formed import is "Rate limit exceeded")."""
        return sorted(r["at"] for r in self.requests() if r["status"] == 429
                      or (r["status"] == 400 and r["method"] == "POST" and r["path"] == BULK_PATH))

    def refusals(self) -> tuple[int, int]:
        """(requests refused for rate: 429s and bulk "Rate limit exceeded", every API request)."""
        stats = self.client.stats()
        return stats["rate_limited"] + stats["storm_limited"] + stats["bulk_rate_limited"], stats["requests"]

    def subscribed(self, list_id: int) -> dict[str, dict[str, Any]]:
        return {e: m for e, m in self.client.members(list_id).items() if m["status"] == "subscribed"}

    def assert_list_exact(self, list_id: int, expected: dict[str, dict[str, Any]]) -> None:
        """The list holds exactly the expected people, subscribed, with their names and phones."""
        members = self.client.members(list_id)
        missing = set(expected) - set(members)
        extra = set(members) - set(expected)
        assert not missing and not extra, (f"{self.connection} list {list_id}: {len(missing)} missing "
                                           f"(e.g. {sorted(missing)[:3]}), {len(extra)} unexpected "
                                           f"(e.g. {sorted(extra)[:3]})")
        for email, p in expected.items():
            m = members[email]
            assert m["status"] == "subscribed", (email, m["status"])
            assert (m["first_name"], m["last_name"], m["phone"]) == (p["FirstName"], p["LastName"], p["Phone"]), email

    def caught_up(self) -> None:
        """Return once every request that reached the simulator before this call is in its log.

        A probe request answered now means every earlier arrival was logged (the simulator logs on arrival;
        with latency 0 nothing sleeps before that). Any answer will do, a 429 too.
        """
        probe = urllib.request.Request(f"{self.url}/api/3/lists", headers={"Api-Token": API_KEY})
        try:
            with urllib.request.urlopen(probe, timeout=60) as resp:
                resp.read()
        except urllib.error.HTTPError:
            pass

    def in_flight(self) -> int:
        return sum(1 for r in self.requests() if r["status"] == 0)


def open_account(folder: Path, tag: str, *, lists: int = 5, processing_delay: float = 0.5, seed: int = 7,
                 rate_scale: float = RATE_SCALE, rps: float | None = None,
                 bulk_per_minute: float | None = None) -> Account:
    """A started simulator at ``rate_scale`` x AC's budget (caller stops ``account.server``), with lists
    1..``lists``; its log goes to ``folder``.

    ``rps`` and ``bulk_per_minute`` are the connection's budget: the simulator's by default; lower makes
    runs slower without the simulator refusing anything."""
    settings = SimSettings(api_keys=(API_KEY,), rate_scale=rate_scale, processing_delay=processing_delay,
                           seed=seed, lists={i: f"List {i}" for i in range(1, lists + 1)})
    server = SimProcess(settings, folder / f"sim-{tag}.log")
    return Account(connection=f"acct_{tag}", hostname=f"acct-{tag}-{uuid.uuid4().hex[:10]}.api-us1.com",
                   server=server, client=SimClient(server.url), rps=rps or settings.effective_rps,
                   bulk_per_minute=bulk_per_minute or settings.effective_bulk_per_minute)


# ------------------------------------------------------------------------------------------ exports

@dataclass
class ExportDef:
    """One export: its own segment and list on one account, and the snapshot it is synced from."""

    name: str
    account: Account
    list_id: int
    segment: Segment
    snapshot: Path

    @property
    def segment_id(self) -> str:
        return f"seg-{self.name}"

    @property
    def batches(self) -> int:
        """Bulk imports a first sync of the snapshot needs: batches of 250 within pages of 5000 rows."""
        pages = [self.segment.profiles[i:i + PAGE] for i in range(0, len(self.segment.profiles), PAGE)]
        total, seen = 0, set()
        for page in pages:
            fresh = 0
            for p in page:
                email = email_of(p)
                if email in self.segment.expected and email not in seen:
                    seen.add(email)
                    fresh += 1
            total += math.ceil(fresh / BATCH)
        return total


def unique_name(prefix: str) -> str:
    """An export name no other test uses (the lease key on a shared Redis is the export's name)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_export(tmp_path: Path, name: str, account: Account, list_id: int, people: Iterable[int]) -> ExportDef:
    """An export of ``people`` (sample people by number, all valid) to ``list_id``; writes its snapshot."""
    segment = make_segment(people)
    snapshot = write_jsonl(tmp_path / "snapshots" / f"{name}.jsonl", segment.profiles)
    return ExportDef(name, account, list_id, segment, snapshot)


# ------------------------------------------------------------------------------------------ configs

@dataclass
class Replica:
    """One worker process's config (its own metrics port; everything else shared)."""

    config: Path
    metrics_port: int
    proc: WorkerProc | None = None

    def metrics(self) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as resp:
            return parse(resp.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        return value(self.metrics(), name, **labels)

    def logs(self) -> list[dict[str, Any]]:
        """The replica's JSON log lines (anything else it printed is skipped)."""
        assert self.proc is not None
        lines = []
        for line in self.proc.text().splitlines():
            if line.startswith("{"):
                try:
                    lines.append(orjson.loads(line))
                except orjson.JSONDecodeError:  # a line cut by a kill -9
                    continue
        return lines

    def logged(self, message: str, **fields: Any) -> list[dict[str, Any]]:
        """Log lines whose message contains ``message`` and whose fields include ``fields``."""
        return [r for r in self.logs() if message in r.get("msg", "")
                and all(r.get(k) == v for k, v in fields.items())]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def write_configs(tmp_path: Path, broker: Broker, accounts: list[Account], exports: list[ExportDef], *,
                  count: int, state_url: str | None = None, redis_url: str | None = None,
                  worker: dict[str, Any] | None = None) -> list[Replica]:
    """``count`` configs, identical but for the metrics port: one broker, state store and Redis."""
    settings = {"state_url": state_url or f"file://{tmp_path / 'state'}",
                "snapshot_prefixes": [f"file://{tmp_path}/"], **(worker or {})}
    if redis_url:
        settings["redis_url"] = redis_url
    body = [_toml_table(a) for a in accounts] + [_toml_export(e) for e in exports]
    replicas = []
    for i in range(count):
        port = free_port()
        path = tmp_path / f"replica-{i}.toml"
        path.write_text("\n".join(["[worker]", broker.worker_toml(), f"metrics_port = {port}",
                                   *(f"{k} = {_toml_value(v)}" for k, v in settings.items()), "", *body]))
        replicas.append(Replica(path, port))
    return replicas


def _toml_table(a: Account) -> str:
    return f"""
[connections.{a.connection}]
hostname = "{a.hostname}"
base_url = "{a.url}"
api_key_env = "{KEY_ENV}"
data_privacy_consent = true
requests_per_second = {a.rps}
bulk_requests_per_minute = {a.bulk_per_minute}
"""


def _toml_export(e: ExportDef) -> str:
    return f"""
[exports.{e.name}]
segment = "{e.segment_id}"
connection = "{e.account.connection}"
list_id = {e.list_id}
mapping = {MAPPING}
"""


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML for {v!r}")


# ------------------------------------------------------------------------------------------ events

def refreshed(export: ExportDef, refresh_id: str | None = None, *, snapshot: Path | None = None,
              occurred_at: str | None = None) -> dict[str, Any]:
    """A segment.refreshed for the export's own segment (its snapshot unless another is named)."""
    from worker.events.envelopes import now_iso
    from worker.events.schemas import validate_event

    event = {"type": "segment.refreshed", "version": 1, "id": str(uuid.uuid4()),
             "occurred_at": occurred_at or now_iso(), "segment": {"id": export.segment_id},
             "refresh_id": refresh_id or f"r-{uuid.uuid4().hex[:12]}",
             "snapshot": {"uri": f"file://{snapshot or export.snapshot}", "format": "jsonl"}}
    validate_event(event)
    return event


def requested(export: ExportDef, snapshot_uri: str | None = None) -> dict[str, Any]:
    """An export.requested (a run on demand) naming the snapshot."""
    from worker.events.envelopes import now_iso
    from worker.events.schemas import validate_event

    event = {"type": "export.requested", "version": 1, "id": str(uuid.uuid4()), "occurred_at": now_iso(),
             "export": export.name,
             "snapshot": {"uri": snapshot_uri or f"file://{export.snapshot}", "format": "jsonl"}}
    validate_event(event)
    return event


# ------------------------------------------------------------------------------------------ figures

def pace(times: list[float]) -> float:
    """Bulk imports per minute over the busy span: from the first accepted one to the last."""
    ordered = sorted(times)
    if len(ordered) < 2 or ordered[-1] <= ordered[0]:
        return 0.0
    return (len(ordered) - 1) * 60.0 / (ordered[-1] - ordered[0])


@dataclass
class AccountFigures:
    connection: str
    posts: int
    span_seconds: float
    pace: float  # bulk imports per minute over the busy span
    ceiling: float
    refused: int
    requests: int
    per_second: list[int]  # accepted bulk imports in each second of the busy span (ramp-up, gaps, tail)
    longest_silence: float  # the longest time without any API request arriving, within the busy span

    @property
    def pace_share(self) -> float:
        return self.pace / self.ceiling

    def line(self) -> str:
        return (f"{self.connection}: {self.posts} bulk imports in {self.span_seconds:.1f}s = {self.pace:.0f}/min of "
                f"{self.ceiling:.0f}/min ({100 * self.pace_share:.1f}%); {self.refused} of {self.requests} "
                f"requests refused ({100 * self.refused / max(1, self.requests):.2f}%); longest silence "
                f"{self.longest_silence:.2f}s; bulk imports per second: {self.per_second}")


def figures(account: Account) -> AccountFigures:
    times = account.accepted_posts()
    refused, total = account.refusals()
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    per_second = [0] * (int(span) + 1)
    for t in times:
        per_second[int(t - times[0])] += 1
    arrivals = [r["at"] for r in account.requests() if times and times[0] <= r["at"] <= times[-1]]
    silence = max((b - a for a, b in pairwise(arrivals)), default=0.0)
    return AccountFigures(account.connection, len(times), span, pace(times), account.ceiling, refused, total,
                          per_second, silence)


# ------------------------------------------------------------------------------------------ waiting

def wait_until(predicate: Any, timeout: float, what: str, *, interval: float = 0.2, check: Any = None) -> Any:
    """The e2e harness's ``wait_for`` (a condition with a deadline), polling a little less often."""
    return wait_for(predicate, timeout, what, interval=interval, check=check)


def all_alive(replicas: list[Replica]) -> Any:
    """A ``check`` that fails as soon as a replica that should be running has exited."""
    def check() -> None:
        for r in replicas:
            if r.proc is not None:
                r.proc.assert_alive()
    return check


@dataclass
class Completions:
    """Every completion event read from the broker so far, and the checks the tests make on them."""

    broker: Broker
    seen: list[dict[str, Any]] = field(default_factory=list)

    def read(self) -> list[dict[str, Any]]:
        self.seen = [e for e in self.broker.read_events() if e["type"] in ("export.completed", "export.failed")]
        return self.seen

    def failed(self) -> list[dict[str, Any]]:
        return [e for e in self.read() if e["type"] == "export.failed"]

    def of(self, export: str) -> list[dict[str, Any]]:
        return [e for e in self.read() if e["export"] == export]

    def wait(self, exports: list[str], timeout: float, check: Any = None) -> None:
        """Until each export has a completion (export.failed fails at once)."""
        def done() -> bool:
            failed = self.failed()
            assert not failed, f"export.failed published: {failed}"
            return all(self.of(name) for name in exports)

        wait_until(done, timeout, f"a completion of each of {len(exports)} exports", interval=0.5, check=check)


def runs_started(replicas: list[Replica], export: str) -> dict[int, int]:
    """How many runs of ``export`` each replica started (index -> count; replicas with none left out)."""
    out = {}
    for i, r in enumerate(replicas):
        n = len(r.logged("run starting", export=export))
        if n:
            out[i] = n
    return out


def chunks(start: int, sizes: list[int]) -> Iterator[range]:
    """Consecutive, disjoint ranges of people numbers of the given sizes."""
    for size in sizes:
        yield range(start, start + size)
        start += size


# ------------------------------------------------------------------------------------------ run records

def batch_records(state_url: str, export: str, run_id: str) -> tuple[int, int]:
    """(batches AC accepted, batches with a final outcome) recorded for a run, on any state store."""
    from worker.run.runbook import RunKeys
    from worker.state import open_store

    keys = open_store(state_url).list(RunKeys(export, run_id).run)  # the records of every plan of the run
    return sum(k.endswith(".accepted") for k in keys), sum(k.endswith(".final") for k in keys)


def lease_owner(redis_url: str, export: str) -> str | None:
    """Who holds the export's lease in Redis (the holder's "host-pid/random"), or None."""
    import redis

    from worker.leases.redis_backend import DEFAULT_KEY_PREFIX

    client = redis.Redis.from_url(redis_url)
    try:
        held = client.get(f"{DEFAULT_KEY_PREFIX}{{{export}}}")
    finally:
        client.close()
    return held.decode() if held is not None else None
