"""The crash-point walker's world: the real engine, the simulator over HTTP, a real state store, and faults
at their boundaries.

Every state-store write, every ActiveCampaign request and every completion-event publish of a delivery is a
*step*, named by what it does (``put_if_absent runs/R/plans/<plan>/parts/part-00000``, ``POST
import/bulk_import``, ``publish``) and numbered by its occurrence. A *process* is one worker handling one
delivery; a fault aimed at one step of it either kills it just before that step (nothing more of it reaches
the store, ActiveCampaign or the broker: every later write is refused) or performs the step and loses its
answer on the wire: a store write lands and its caller hears nothing (a conditional write is then resolved by
the store layer), an ActiveCampaign request is processed by the simulator and its answer never arrives (the
client retries), a publish goes out and its confirm is lost (the delivery is handed back); or, for a store
write, makes the store fail it (StateError, nothing written: S3 down for that request).

What is real: ``Engine.run`` and everything below it; ``FileStore`` / ``S3Store`` (moto over HTTP) under a
thin wrapper that counts writes and injects the fault; the simulator over HTTP, with the fault injected in
the client's HTTP session itself (an aiohttp middleware: the request really goes out, or really does not).
What the walker sets: sizes and timings only (``WalkEngine``: batches of 6, first poll after 50 ms, one POST
at a time so the steps come in a stable order, fast client retries). The worker's delivery loop (publish the
event, mark it published, hand the delivery back after a failure) is played by ``World.deliver``, as
``worker.service.worker`` does it.

The same walker runs against the code before issue 15 (``StateStore`` then had no ``_resolve``; the engine
no ``importer_for``), which is how the "before" column of its table was measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse

from worker.activecampaign.client import ActiveCampaignClient
from worker.activecampaign.importer import BulkImporter
from worker.contacts.plan import Planner
from worker.run import engine as engine_module
from worker.run.engine import Engine, manages_tags
from worker.run.runbook import run_id_for
from worker.run.types import RunResult, RunSpec
from worker.settings import Config, Export, parse_config
from worker.sim import SimClient
from worker.state import StateError, StateStore

KEY = "walker-key-5e4d3c2b1a0f9e8d"
KEY_ENV = "WALKER_AC_KEY"
LIST = 3
BATCH = 6  # contacts per bulk import: a run of ~30 changes is a handful of batches
PAGE = 10  # profiles per snapshot page: several plan parts
SCALE = 1000.0  # the account's budget, times ActiveCampaign's: nothing waits for the limiter
EXPORT = "walk"
HAS_RESOLVE = hasattr(StateStore, "_resolve")  # issue 15's store layer (lost answers resolved by reading back)
MAX_DELIVERIES = 12  # deliveries of one run before the walk calls it stuck


class Crash(BaseException):
    """The process dies. A BaseException, so no ``except Exception`` of ours handles it as a failure."""


# ------------------------------------------------------------------------------------------ the segment


def person(i: int, version: str) -> dict[str, str]:
    """Person ``i`` at ``version``; ``Tags`` is read only by the tagged world's export (``tag_field``)."""
    return {"Email": f"p{i}@walk.example.com", "First": f"F{i}-{version}", "Last": f"L{i}", "Tags": f"t:{version}"}


#: The tagged world's tags (managed tags, issue 18): a static one, and one per version from ``tag_field``.
STATIC_TAG = "walk:vip"
OTHERS_TAG = "newsletter"  # added in ActiveCampaign by someone else, to a few people: never removed


def our_tags(version: str) -> set[str]:
    return {STATIC_TAG, f"t:{version}"}


def email(i: int) -> str:
    return f"p{i}@walk.example.com"


def _members(*groups: tuple[range | list[int], str]) -> dict[int, str]:
    return {i: version for people, version in groups for i in people}


@dataclass(frozen=True)
class Refresh:
    name: str
    occurred_at: str
    members: dict[int, str]  # person -> version of their values


#: The base: rA (everyone), then rB (five leave: this export unsubscribes them), then two people
#: unsubscribe themselves in ActiveCampaign (3 and 4, through a campaign's link).
RA = Refresh("rA", "2026-12-01T08:00:00Z", _members((range(30), "v0")))
RB = Refresh("rB", "2026-12-01T09:00:00Z", _members((range(25), "v0")))
SELF_UNSUBSCRIBED = (3, 4)
#: The people rB's run unsubscribed (they left): with re-entry off they stay out whatever refresh lists them.
LEFT_IN_BASE = tuple(range(25, 30))
#: The walked run: 0 and 1 leave, 25 and 26 come back (re-entry), 30-34 join, 2-12 change (3 among them,
#: who unsubscribed themselves: AC skips them), 13-24 unchanged.
R1 = Refresh("r1", "2026-12-01T12:00:00Z", _members((range(2, 13), "v1"), (range(13, 27), "v0"),
                                                   (range(30, 35), "v1")))
#: Competitors: an older refresh (not stale until r1 commits) and a newer one.
R0 = Refresh("r0", "2026-12-01T10:00:00Z", _members((range(0, 5), "v0"), (range(5, 16), "old"),
                                                   (range(16, 27), "v0")))
R2 = Refresh("r2", "2026-12-01T13:00:00Z", _members((range(2, 9), "v2"), (range(9, 13), "v1"),
                                                   (range(13, 23), "v0"), (range(30, 37), "v2")))
#: One more, the newest, for the sweep's longer histories: more people join and change, a few more leave.
R3 = Refresh("r3", "2026-12-01T14:00:00Z", _members((range(2, 10), "v3"), (range(10, 25), "v0"),
                                                   (range(30, 40), "v3")))


class Competitor(Enum):
    NONE = "resume"
    SAME = "same refresh again"
    OLDER = "older refresh late"
    NEWER = "newer refresh"


class FaultKind(Enum):
    CRASH = "crash before"
    LOSE = "lose the reply"
    FAIL = "store fails"  # store steps only: the store answers with an error (StateError), nothing written


@dataclass(frozen=True)
class Fault:
    """The step to fault: by label and occurrence, or (``at`` > 0) the ``at``-th step of the process."""

    label: str
    occurrence: int
    kind: FaultKind
    at: int = 0


# ------------------------------------------------------------------------------------------ steps and processes

_GENERATION = re.compile(r"(?:^|(?<=/))shards/[0-9a-f]{10}-[0-9a-f]{8}/")
_PLAN = re.compile(r"((?:^|/)plans/[^/]+?)\.[0-9a-f]{16}$|(/plans/)[0-9a-f]{16}/")


def store_label(op: str, key: str) -> str:
    """``op key`` with what differs between two runs of the same step (generations, plan ids) blanked."""
    key = _GENERATION.sub("shards/<gen>/", key.removeprefix(f"exports/{EXPORT}/"))
    key = _PLAN.sub(lambda m: f"{m.group(1)}.<plan>" if m.group(1) else f"{m.group(2)}<plan>/", key)
    return f"{op} {key}"


def ac_label(method: str, path: str, query: dict[str, str]) -> str:
    path = re.sub(r"/\d+(/|$)", r"/<id>\1", path.split("/api/3/", 1)[-1])
    extra = f" {query['email']}" if "email" in query and "listid" in query else ""
    return f"{method} {path}{extra}"


@dataclass
class Exchange:
    """One ActiveCampaign request of the walk: what was sent, what came back, and what became of the answer."""

    process: int
    method: str
    path: str
    body: bytes
    status: int = 0  # 0: not sent (the process was dead)
    reply: bytes = b""
    lost: bool = False  # the answer never reached the client


class Act(Enum):
    GO = "go"
    CRASH = "crash"
    LOSE = "lose"
    FAIL = "fail"


@dataclass
class Step:
    process: int
    kind: str  # "store", "ac", "broker"
    label: str
    occurrence: int


class Process:
    """One worker process handling one delivery: its steps, its fault, and whether it is dead."""

    def __init__(self, world: World, n: int, fault: Fault | None) -> None:
        self.world, self.n, self.fault = world, n, fault
        self.dead = False
        self.counts: Counter[str] = Counter()
        self.total = 0
        self.task: asyncio.Future[Any] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.faulted: Step | None = None
        self.store = WalkStore(world.store, self)

    def step(self, kind: str, label: str) -> Act:
        with self.world.lock:
            if self.dead:
                return Act.CRASH
            self.counts[label] += 1
            self.total += 1
            step = Step(self.n, kind, label, self.counts[label])
            self.world.trace.append(step)
            fault = self.fault
            if fault is None or self.faulted is not None:
                return Act.GO
            if self.total != fault.at if fault.at else (fault.label, fault.occurrence) != (label, step.occurrence):
                return Act.GO
            self.faulted = step
            if fault.kind is FaultKind.LOSE:
                return Act.LOSE
            if fault.kind is FaultKind.FAIL:
                return Act.FAIL
            self.dead = True
        if self.task is not None and self.loop is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)
        return Act.CRASH

    def alive(self) -> None:
        if self.dead:
            raise Crash(f"process {self.n} is dead")


class WalkStore(StateStore):
    """The real store, with one process's writes numbered as steps and its fault injected.

    Reads are not steps (a crash before a read is a crash after the write before it). A write whose answer
    is lost lands and then fails as a request without an answer does: ``WriteUnanswered`` for a conditional
    write (the store layer resolves it by reading back), StateError for the others.
    """

    def __init__(self, inner: StateStore, process: Process) -> None:
        self.inner, self.process = inner, process

    def _step(self, op: str, key: str) -> Act:
        act = self.process.step("store", store_label(op, key))
        if act is Act.CRASH:
            raise Crash(f"crashed before {op} {key}")
        if act is Act.FAIL:  # the store is down for this one request: an error, nothing written
            raise StateError(f"cannot {op} {key}: the store failed (walk fault)")
        return act

    def _planned(self, key: str, data: bytes, written: bool) -> None:
        """A plan part that landed: the intent to send its batches (what the walk allows to be sent again)."""
        if written and "/part-" in key:
            prefix = key.rpartition("/parts/" if "/parts/" in key else "/plan/")[0]
            header = orjson.loads(data.split(b"\n", 1)[0])
            for b in header["batches"]:
                self.process.world.planned[(prefix, int(b["n"]))] = list(b["emails"])

    def get(self, key: str) -> bytes | None:
        self.process.alive()
        return self.inner.get(key)

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        self.process.alive()
        return self.inner.get_versioned(key)

    def list(self, prefix: str) -> list[str]:
        self.process.alive()
        return self.inner.list(prefix)

    def list_modified(self, prefix: str) -> list[tuple[str, float]]:
        self.process.alive()
        return self.inner.list_modified(prefix)

    def uri(self, key: str) -> str:
        return self.inner.uri(key)

    def put(self, key: str, data: bytes) -> None:
        act = self._step("put", key)
        self.inner.put(key, data)
        if key.endswith(".accepted"):
            world = self.process.world
            world.recorded_batches.add(orjson.loads(data)["batch_id"])
            prefix, _, name = key.rpartition("/batches/")
            world.accepted.add((prefix, int(name.split(".")[0])))
        if act is Act.LOSE:
            raise StateError(f"cannot write {key}: no answer (the write landed)")

    def delete(self, key: str) -> None:
        act = self._step("delete", key)
        self.inner.delete(key)
        if act is Act.LOSE:
            raise StateError(f"cannot delete {key}: no answer (the delete happened)")

    if HAS_RESOLVE:
        def _put_if_absent(self, key: str, data: bytes) -> bool:
            from worker.state import WriteUnanswered

            act = self._step("put_if_absent", key)
            done = self.inner._put_if_absent(key, data)  # type: ignore[attr-defined]
            self._planned(key, data, bool(done))
            if act is Act.LOSE:
                raise WriteUnanswered(f"{key}: no answer (the write {'landed' if done else 'was refused'})")
            return bool(done)

        def _replace_if_unchanged(self, key: str, data: bytes, version: str) -> bool:
            from worker.state import WriteUnanswered

            act = self._step("replace_if_unchanged", key)
            done = self.inner._replace_if_unchanged(key, data, version)  # type: ignore[attr-defined]
            if act is Act.LOSE:
                raise WriteUnanswered(f"{key}: no answer (the write {'landed' if done else 'was refused'})")
            return bool(done)
    else:  # the store before issue 15: a lost answer was retried by the client, and the retry's answer kept
        def put_if_absent(self, key: str, data: bytes) -> bool:
            act = self._step("put_if_absent", key)
            done = self.inner.put_if_absent(key, data)
            self._planned(key, data, done)
            return self.inner.put_if_absent(key, data) if act is Act.LOSE else done

        def replace_if_unchanged(self, key: str, data: bytes, version: str | None) -> bool:
            act = self._step("replace_if_unchanged", key)
            done = self.inner.replace_if_unchanged(key, data, version)
            return self.inner.replace_if_unchanged(key, data, version) if act is Act.LOSE else done


class _FastImporter(BulkImporter):
    """The importer with the walk's timings (for the engine before issue 15, which had no ``importer_for``)."""

    def __init__(self, client: ActiveCampaignClient, list_id: int, **kw: Any) -> None:
        kw = {"expected_delay": 0.05, "max_concurrent_posts": 1, "poll_concurrency": 1, "lookup_concurrency": 1,
              **kw}
        super().__init__(client, list_id, **kw)


class WalkClient(ActiveCampaignClient):
    """Our client, with one process's requests numbered as steps and its fault injected in its HTTP session
    (an aiohttp middleware: what is sent is really sent, what is refused never leaves)."""

    def __init__(self, process: Process, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.process = process

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=64),
                headers={"Accept": "application/json", "User-Agent": "segment-export"}, raise_for_status=False,
                middlewares=(self._fault,))
        return self._session

    async def _fault(self, request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        p = self.process
        body = bytes(getattr(request.body, "_value", b"") or b"")
        exchange = Exchange(p.n, request.method, request.url.path, body)
        p.world.exchanges.append(exchange)
        act = p.step("ac", ac_label(request.method, request.url.path, dict(request.url.query)))
        if act is Act.CRASH:
            raise aiohttp.ClientConnectionError("the process is dead")
        response = await handler(request)
        exchange.reply, exchange.status = await response.read(), response.status
        if act is Act.LOSE:
            response.release()
            exchange.lost = True
            raise aiohttp.ServerDisconnectedError("the answer was lost")
        return response


class WalkEngine(Engine):
    """The engine with the walk's sizes and timings, and the process's client."""

    def __init__(self, config: Config, process: Process) -> None:
        super().__init__(config, process.store, page_size=PAGE)
        self.process = process

    def client_for(self, export: Export, may_write: Callable[[], bool] | None = None) -> ActiveCampaignClient:
        conn = self.config.connections[export.connection]
        extra = {"may_write": may_write} if may_write is not None else {}
        return WalkClient(self.process, conn.api_url, conn.api_key(), self.limiter_for(conn), retry_base=0.002,
                          retry_cap=0.01, on_request=self.hooks.request_answered, **extra)

    def planner_for(self, spec: RunSpec, mapper: Any, synced: Any) -> Planner:
        export = spec.export
        return Planner(mapper, synced, full=spec.full, unsubscribe_leavers=export.on_leave == "unsubscribe",
                       readmit=export.readmit, max_contacts=BATCH, leavers_per_part=PAGE,
                       manage_tags=manages_tags(export, synced))

    def importer_for(self, client: ActiveCampaignClient, export: Export) -> BulkImporter:
        return _FastImporter(client, export.list_id)


if not hasattr(Engine, "importer_for"):  # the engine before issue 15 made its importer inline
    engine_module.BulkImporter = _FastImporter  # type: ignore[attr-defined,misc]


# ------------------------------------------------------------------------------------------ the world


class Stores:
    """Fresh stores holding a copy of the base state: folders under ``root``, or prefixes of ``bucket``."""

    def __init__(self, kind: str, root: Path, bucket: str | None = None) -> None:
        self.kind, self.root, self.bucket = kind, root, bucket
        self._n = itertools.count()
        self.last_name = ""

    def fresh(self, base: str | None = None) -> tuple[str, StateStore]:
        name = self.last_name = f"w{next(self._n)}-{uuid.uuid4().hex[:6]}"
        if self.kind == "file":
            from worker.state import FileStore

            if base is not None:
                shutil.copytree(self.root / base, self.root / name, ignore=shutil.ignore_patterns(".*"))
            return name, FileStore(self.root / name)
        from worker.clients.s3 import s3_client
        from worker.state import S3Store

        assert self.bucket is not None
        if base is not None:
            s3 = s3_client()
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{base}/"):
                for o in page.get("Contents", []):
                    s3.copy_object(Bucket=self.bucket, Key=f"{name}/{o['Key'][len(base) + 1:]}",
                                   CopySource={"Bucket": self.bucket, "Key": o["Key"]})
        return name, S3Store(self.bucket, name)


def config(sim_url: str, state_url: str, tagged: bool = False, readmit: bool = True) -> Config:
    export: dict[str, Any] = {"segment": "walk-segment", "connection": "sim", "list_id": LIST, "readmit": readmit,
                              "max_removal_fraction": 0.5,
                              "mapping": {"email": "Email", "first_name": "First", "last_name": "Last"}}
    if tagged:
        export.update(tags=[STATIC_TAG], tag_field="Tags")
    return parse_config({
        "worker": {"state_url": state_url},
        "connections": {"sim": {"hostname": "sim.api-us1.com", "base_url": sim_url, "api_key_env": KEY_ENV,
                                "data_privacy_consent": True, "requests_per_second": 5 * SCALE,
                                "bulk_requests_per_minute": 100 * SCALE}},
        "exports": {EXPORT: export},
    })


class World:
    """One walk case: a store holding the base, the simulator restored to the base, processes and their steps."""

    def __init__(self, sim: SimClient, store: StateStore, state_url: str, snapshots: dict[str, str], *,
                 tag: str = "", on_publish: Callable[[dict[str, Any]], None] | None = None,
                 tagged: bool = False, readmit: bool = True) -> None:
        """``tag``: a prefix of every refresh id (so runs of different worlds never share an id);
        ``on_publish``: where a published completion event also goes (a real broker, in ``make chaos``);
        ``tagged``: the export adds tags and removes them again (managed tags); ``readmit``: the export's
        re-entry setting (off: whoever this export unsubscribed stays out, and nothing may undo a newer plan)."""
        self.sim, self.store, self.tag, self.on_publish, self.tagged = sim, store, tag, on_publish, tagged
        self.readmit = readmit
        self.config = config(sim.base_url, state_url, tagged, readmit)
        self.export = self.config.exports[EXPORT]
        self.snapshots = snapshots
        self.lock = threading.Lock()
        self.trace: list[Step] = []
        self.processes: list[Process] = []
        self.published: list[dict[str, Any]] = []
        self.outcomes: dict[str, list[str]] = {}  # run id -> how each delivery ended
        self.recorded_batches: set[str] = set()  # batchIds that reached an accepted record in the store
        self.planned: dict[tuple[str, int], list[str]] = {}  # (plan records' prefix, batch) -> its emails
        self.accepted: set[tuple[str, int]] = set()  # (plan records' prefix, batch) with an accepted record
        self.exchanges: list[Exchange] = []  # every ActiveCampaign request, in the order it was made
        self.failed_after_commit: list[str] = []  # runs that ended export.failed once their commit had landed

    def spec(self, refresh: Refresh, run_id: str | None = None) -> RunSpec:
        refresh_id = self.tag + refresh.name
        return RunSpec(export=self.export, snapshot_uri=self.snapshots[refresh.name], refresh_id=refresh_id,
                       occurred_at=refresh.occurred_at, run_id=run_id or run_id_for(EXPORT, refresh_id))

    def process(self, fault: Fault | None = None) -> Process:
        with self.lock:
            p = Process(self, len(self.processes) + 1, fault)
            self.processes.append(p)
        return p

    # -------------------------------------------------------------------------------------- deliveries
    async def deliver(self, spec: RunSpec, fault: Fault | None = None) -> str:
        """One delivery of ``spec`` to a new process, handled as the worker does; returns how it ended:
        published, duplicate, stale, failed, again (handed back: retried later), crashed."""
        p = self.process(fault)
        p.loop = asyncio.get_running_loop()
        engine = WalkEngine(self.config, p)
        try:
            p.task = asyncio.ensure_future(engine.run(spec))
            try:
                result: RunResult = await p.task
            except (Crash, asyncio.CancelledError):
                return self._ended(spec, "crashed")
            if p.dead:
                return self._ended(spec, "crashed")
            if result.event is not None and result.event["status"] == "failed" and self._committed(spec.run_id):
                self.failed_after_commit.append(spec.run_id)  # the worker's last attempt would publish it
            if result.busy or result.interrupted or (result.event is not None and result.transient):
                return self._ended(spec, "again")
            if result.stale:
                return self._ended(spec, "stale")
            assert result.event is not None
            try:
                if result.replayed and await engine.was_published(spec):
                    return self._ended(spec, "duplicate")
                act = p.step("broker", "publish")
                if act is Act.CRASH:
                    return self._ended(spec, "crashed")
                self.published.append(dict(result.event))
                if self.on_publish is not None:
                    self.on_publish(dict(result.event))
                if act is Act.LOSE:  # the broker took it; its confirm was lost: the delivery is handed back
                    return self._ended(spec, "again")
                if result.event["status"] == "failed":
                    return self._ended(spec, "failed")
                await engine.mark_published(spec)
            except Crash:
                return self._ended(spec, "crashed")
            except StateError:
                return self._ended(spec, "again")
            return self._ended(spec, "published")
        finally:
            with contextlib.suppress(Exception, Crash):
                await engine.aclose()

    def _committed(self, run_id: str) -> bool:
        """The synced state (or the run's own record) says ``run_id`` committed."""
        from worker.contacts.synced import SyncedState

        manifest = SyncedState.load(self.store, f"exports/{EXPORT}/synced")[0].manifest
        return (manifest is not None and manifest.committed_by(run_id) is not None) or \
            self.store.get(f"exports/{EXPORT}/runs/{run_id}/committed") is not None

    def _ended(self, spec: RunSpec, how: str) -> str:
        self.outcomes.setdefault(spec.run_id, []).append(how)
        return how

    async def until_done(self, spec: RunSpec) -> str:
        """Deliver ``spec`` until a delivery ends for good (the broker redelivers; the worker retries)."""
        for _ in range(MAX_DELIVERIES):
            how = await self.deliver(spec)
            if how not in ("again", "crashed"):
                return how
        return "stuck"


def trace_of(world: World, process: int) -> Iterator[Step]:
    return (s for s in world.trace if s.process == process)


@dataclass
class Case:
    """One case of the walk: the fault at one step, then the competitor, then the run resumes."""

    step: Step | None  # the reference step faulted (None: after the last step)
    fault: Fault | None
    competitor: Competitor
    violations: list[str] = field(default_factory=list)
