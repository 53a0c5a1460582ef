"""``segment-export``: the command line (also ``python -m worker``).

Exit codes: 0 success; 3 finished but some contacts failed; 1 the run failed; 2 bad usage or config.
Results go to stdout as JSON; logs and progress go to stderr, so ``sync ... | jq`` works.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import TYPE_CHECKING, Any

import orjson

from worker.config import Config, ConfigError, load_config

if TYPE_CHECKING:  # imported lazily at run time: `--help` and `config check` stay fast
    from worker.engine import Engine, RunSpec

EXIT_USAGE = 2


def _print_json(obj: Any) -> None:
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    sys.stderr.write(f"segment-export: error: {message}\n")
    return code


def _setup_logging(level: str, fmt: str | None = None, command: str | None = None) -> None:
    """JSON lines on stderr for the worker (``run``), plain text for the other commands, unless
    ``--log-format`` says otherwise; emails masked either way (:mod:`worker.logs`)."""
    from worker import logs

    logs.setup(level, fmt or ("json" if command == "run" else "text"), sys.stderr)


# ------------------------------------------------------------------------------------------ sync
class TtyProgress:
    """One self-overwriting status line on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, p: Any) -> None:
        import time

        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        elapsed = max(now - p.started, 1e-6)
        sys.stderr.write(
            f"\r  read {p.profiles_read:,} profiles | batches planned {p.batches_planned:,} "
            f"sent {p.batches_sent:,} confirmed {p.batches_confirmed:,} | "
            f"{p.contacts_sent / elapsed * 60:,.0f} contacts/min   "
        )
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def cmd_sync(args: argparse.Namespace, config: Config) -> int:
    from worker import metrics
    from worker.engine import Engine, RunSpec
    from worker.runbook import sync_run_id
    from worker.snapshot import SnapshotError, snapshot_identity
    from worker.state import open_store
    from worker.synced import SyncedState

    export = config.export(args.export)
    config.connections[export.connection].api_key()  # a missing key is a config error: exit 2 before work
    store = open_store(config.worker.state_url)
    try:
        identity = snapshot_identity(args.snapshot)
    except SnapshotError as exc:
        identity = f"unreadable:{args.snapshot}"
        logging.getLogger("segment_export.cli").warning("%s", exc)
    base = store.get(f"exports/{export.name}/synced")
    base_run = SyncedState.decode(base).run_id if base else ""
    run_id = sync_run_id(export.name, identity, base_run, args.full)
    refresh_id = args.refresh_id or f"manual-{run_id[5:]}"
    spec = RunSpec(export=export, snapshot_uri=args.snapshot, refresh_id=refresh_id, run_id=run_id,
                   full=args.full, snapshot_format=args.format, snapshot_compression=args.compression)
    progress = TtyProgress()
    engine = Engine(config, store, on_progress=progress, on_request=metrics.observe_request)
    if args.dry_run:
        return _dry_run(engine, spec, args.show_emails)
    result = asyncio.run(engine.run(spec))
    progress.done()
    if args.metrics_file:
        metrics.write_run_file(args.metrics_file, engine, None if result.replayed else result.event)
    _print_json(result.event)
    return result.exit_code


def _dry_run(engine: Engine, spec: RunSpec, show_emails: bool) -> int:
    """Print what the run would change (counts, up to 20 samples per outcome); nothing is sent or written.

    Emails in the samples are masked unless ``show_emails``: the output lands in terminals, tickets and
    chat, where full addresses do not belong. Exit 1 when the run would fail (``would_fail``), else 0.
    """
    from worker.activecampaign.client import ActiveCampaignError
    from worker.engine import RunError
    from worker.mapping import mask_email

    try:
        result = asyncio.run(engine.dry_run(spec))
    except RunError as exc:
        return _fail(exc.message, 1)
    except ActiveCampaignError as exc:
        return _fail(f"ActiveCampaign: {exc}", 1)
    if not show_emails:
        for rows in result["samples"].values():
            for row in rows:
                if row.get("email"):
                    row["email"] = mask_email(row["email"])
    result["snapshot"] = spec.snapshot_uri
    _print_json(result)
    return 1 if result.get("would_fail") else 0


# ------------------------------------------------------------------------------------------ worker
def cmd_run(args: argparse.Namespace, config: Config) -> int:
    from worker.service import Worker

    if args.metrics_port is not None:
        import dataclasses

        config = dataclasses.replace(config, worker=dataclasses.replace(config.worker, metrics_port=args.metrics_port))
    for export in config.exports.values():  # a missing key is a config error at start, not mid-run
        config.connections[export.connection].api_key()
    return asyncio.run(Worker(config, broker_url=args.broker).run())


def _publish(config: Config, broker: str | None, event: dict[str, Any], to: str) -> None:
    from worker.broker import Topology, publish_once, transport_options_for
    from worker.event_schemas import validate_event

    validate_event(event)
    url = broker or config.worker.broker_url
    w = config.worker
    topology = Topology(requests_queue=w.requests_queue, events_exchange=w.events_exchange,
                        max_receive_count=w.max_receive_count)
    publish_once(url, topology, orjson.dumps(event), to=to, event_type=event["type"],
                 transport_options=transport_options_for(url, **w.broker_options))


def _snapshot_ref(uri: str, fmt: str | None, compression: str | None) -> dict[str, Any]:
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    fmt = fmt or ("csv" if ".csv" in name else "jsonl")
    ref: dict[str, Any] = {"uri": uri, "format": fmt}
    if compression or name.endswith(".gz"):
        ref["compression"] = compression or "gzip"
    return ref


def cmd_publish(args: argparse.Namespace, config: Config) -> int:
    from worker.events import new_id, now_iso

    event = {"type": "segment.refreshed", "version": 1, "id": new_id(), "occurred_at": now_iso(),
             "segment": {"id": args.segment}, "refresh_id": args.refresh_id or f"refresh-{new_id()}",
             "snapshot": _snapshot_ref(args.snapshot, args.format, args.compression)}
    _publish(config, args.broker, event, "requests")
    _print_json(event)
    return 0


def cmd_request(args: argparse.Namespace, config: Config) -> int:
    from worker.events import new_id, now_iso

    if args.dry_run:
        return _request_dry_run(args, config)
    config.export(args.export)
    event: dict[str, Any] = {"type": "export.requested", "version": 1, "id": new_id(), "occurred_at": now_iso(),
                             "export": args.export, "full": args.full}
    if args.snapshot:
        event["snapshot"] = _snapshot_ref(args.snapshot, args.format, args.compression)
    _publish(config, args.broker, event, "requests")
    _print_json(event)
    return 0


def _request_dry_run(args: argparse.Namespace, config: Config) -> int:
    """``request --dry-run``: preview here what the requested run would change; publish nothing.

    Why here and not as a dry-run event to the workers: the person asking wants to read the answer, and
    a worker can only log it. The snapshot is the one a worker would use: ``--snapshot``, else the
    segment's last known snapshot from the state store.
    """
    from worker.engine import Engine, RunSpec
    from worker.state import open_store

    export = config.export(args.export)
    config.connections[export.connection].api_key()  # a missing key is a config error: exit 2
    engine = Engine(config, open_store(config.worker.state_url))
    if args.snapshot:
        snap = _snapshot_ref(args.snapshot, args.format, args.compression)
    else:
        last = asyncio.run(engine.last_snapshot(export.name))
        if last is None:
            return _fail(f"export {export.name} has no known snapshot yet (no segment.refreshed seen); "
                         f"pass --snapshot URI")
        snap = last["snapshot"]
    spec = RunSpec(export=export, snapshot_uri=snap["uri"], refresh_id="dry-run", run_id="dry-run",
                   full=args.full, snapshot_format=snap.get("format"), snapshot_compression=snap.get("compression"))
    return _dry_run(engine, spec, args.show_emails)


# ------------------------------------------------------------------------------------------ config check
def cmd_config_check(args: argparse.Namespace, config: Config) -> int:
    if args.online:
        return _config_check_online(config)
    problems = []
    for export in config.exports.values():
        try:
            config.connections[export.connection].api_key()
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        for p in sorted(set(problems)):
            sys.stderr.write(f"segment-export: error: {p}\n")
        return EXIT_USAGE
    summary = {"config": config.path, "ok": True, "connections": sorted(config.connections),
               "exports": {n: {"segment": e.segment, "connection": e.connection, "list_id": e.list_id}
                           for n, e in sorted(config.exports.items())}}
    _print_json(summary)
    return 0


async def _check_connection(config: Config, conn_name: str) -> list[dict[str, str]]:
    """One row per export of the connection (or one for the connection alone): what AC says about it.

    The key is checked with one cheap call; lists one by one; custom fields with one listing (every
    page) shared by the connection's exports, resolved exactly as a run resolves them.
    """
    from worker.activecampaign.client import ActiveCampaignClient, ActiveCampaignError
    from worker.activecampaign.limiter import AccountLimiter
    from worker.fields import resolve_fields

    conn = config.connections[conn_name]
    exports = sorted((e for e in config.exports.values() if e.connection == conn_name), key=lambda e: e.name)
    rows = [{"connection": conn_name, "export": e.name, "list": str(e.list_id), "fields": "-", "problems": ""}
            for e in exports] or [{"connection": conn_name, "export": "-", "list": "-", "fields": "-",
                                   "problems": ""}]

    def all_rows(problem: str) -> list[dict[str, str]]:
        for row in rows:
            row["problems"] = problem
        return rows

    try:
        key = conn.api_key()
    except ConfigError as exc:
        return all_rows(str(exc))
    limiter = AccountLimiter(conn.requests_per_second, conn.bulk_requests_per_minute)
    async with ActiveCampaignClient(conn.api_url, key, limiter, timeout=15.0, max_retries=2) as client:
        try:
            await client.check_key()
        except ActiveCampaignError as exc:
            if exc.code == "auth":
                return all_rows(f"connections.{conn_name}: ActiveCampaign refused the API key; check the key "
                                f"and the hostname (Settings > Developer)")
            if exc.code != "forbidden":
                return all_rows(f"connections.{conn_name}: cannot reach ActiveCampaign ({exc})")
        fields: list[dict[str, Any]] | None = None
        fields_error = ""
        if any(e.fields for e in exports):
            try:
                fields = await client.custom_fields()
            except ActiveCampaignError as exc:
                fields_error = f"cannot list custom fields ({exc})"
        for export, row in zip(exports, rows, strict=False):
            problems: list[str] = []
            try:
                found = await client.get_list(export.list_id)
            except ActiveCampaignError as exc:
                found = None
                problems.append(f"exports.{export.name}.list_id: cannot read list {export.list_id} ({exc})")
            else:
                if found is None:
                    problems.append(f"exports.{export.name}.list_id: ActiveCampaign has no list {export.list_id}; "
                                    f"fix the id (Lists > the list's URL shows it)")
            if found is not None:
                row["list"] = f"{export.list_id} {found.get('name', '')}".strip()
            if export.fields:
                if fields is None:
                    problems.append(f"exports.{export.name}.fields: {fields_error}")
                else:
                    resolved, field_problems = resolve_fields(export, fields)
                    problems.extend(field_problems)
                    row["fields"] = ", ".join(f"{k}=#{r.id} {r.type}" for k, r in resolved.items()) or "-"
                    if field_problems:
                        row["fields"] = f"{len(resolved)} of {len(export.fields)}: {row['fields']}"
            row["problems"] = "; ".join(problems)
    return rows


def _config_check_online(config: Config) -> int:
    """``config check --online``: key, list ids and custom fields against ActiveCampaign, as a table.

    Exit 2 when anything is wrong: the same problems would fail a run, better found before one starts.
    """

    async def check_all() -> list[dict[str, str]]:
        rows: list[dict[str, str]] = []
        for name in sorted(config.connections):
            rows.extend(await _check_connection(config, name))
        return rows

    rows = asyncio.run(check_all())
    columns = (("connection", "CONNECTION"), ("export", "EXPORT"), ("list", "LIST"), ("fields", "FIELDS RESOLVED"),
               ("problems", "PROBLEMS"))
    widths = {k: max(len(title), *(len(r[k]) for r in rows)) for k, title in columns[:-1]}
    lines = ["  ".join(title.ljust(widths.get(k, 0)) for k, title in columns).rstrip()]
    for r in rows:
        cells = [r[k].ljust(widths[k]) for k, _ in columns[:-1]]
        lines.append("  ".join([*cells, r["problems"] or "none"]))
    bad = sum(1 for r in rows if r["problems"])
    lines.append("")
    lines.append(f"{config.path}: {len(rows)} checked, " + (f"{bad} with problems" if bad else "no problems"))
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    return EXIT_USAGE if bad else 0


# ------------------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segment-export",
                                     description="Keep ActiveCampaign lists in step with customer segments.")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    parser.add_argument("--log-format", choices=["json", "text"],
                        help="log lines on stderr: json (default for run) or text (default otherwise)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("sync", help="run one export to the end in this process; prints the completion event")
    p.add_argument("--config", required=True, help="the TOML config file")
    p.add_argument("--export", required=True, help="the export's name ([exports.NAME] in the config)")
    p.add_argument("--snapshot", required=True, help="file:///path, a path, or s3://bucket/key (file or folder)")
    p.add_argument("--full", action="store_true", help="re-send every contact, not only what changed")
    p.add_argument("--dry-run", action="store_true", help="print what would change; send and write nothing")
    p.add_argument("--show-emails", action="store_true", help="with --dry-run: do not mask sample emails")
    p.add_argument("--refresh-id", help="the upstream refresh id to record (default: derived from the snapshot)")
    p.add_argument("--format", choices=["jsonl", "csv"], help="snapshot format (default: by file suffix)")
    p.add_argument("--compression", choices=["none", "gzip"], help="snapshot compression (default: by suffix)")
    p.add_argument("--metrics-file", help="write the run's Prometheus metrics (text format) to this file")
    p.set_defaults(func=cmd_sync, needs_config=True)

    p = sub.add_parser("run", help="the worker: consume the requests queue until SIGTERM/SIGINT")
    p.add_argument("--config", required=True)
    p.add_argument("--broker", help="broker URL (overrides [worker] broker_url): amqp://, sqs://, memory://")
    p.add_argument("--metrics-port", type=int, help="port for /metrics, /healthz, /readyz (default 9108)")
    p.set_defaults(func=cmd_run, needs_config=True)

    p = sub.add_parser("publish", help="publish a segment.refreshed event (for upstreams without a publisher)")
    p.add_argument("--config", required=True)
    p.add_argument("--segment", required=True, help="the segment id")
    p.add_argument("--snapshot", required=True, help="the snapshot URI the refresh wrote")
    p.add_argument("--refresh-id", help="the refresh's id (default: a new one)")
    p.add_argument("--format", choices=["jsonl", "csv"])
    p.add_argument("--compression", choices=["none", "gzip"])
    p.add_argument("--broker", help="broker URL (overrides [worker] broker_url)")
    p.set_defaults(func=cmd_publish, needs_config=True)

    p = sub.add_parser("request", help="publish an export.requested event (run one export on demand)")
    p.add_argument("--config", required=True)
    p.add_argument("--export", required=True)
    p.add_argument("--full", action="store_true", help="re-send every contact")
    p.add_argument("--snapshot", help="snapshot URI (default: the segment's last known snapshot)")
    p.add_argument("--format", choices=["jsonl", "csv"])
    p.add_argument("--compression", choices=["none", "gzip"])
    p.add_argument("--broker", help="broker URL (overrides [worker] broker_url)")
    p.add_argument("--dry-run", action="store_true",
                   help="print what the run would change (computed here); publish and send nothing")
    p.add_argument("--show-emails", action="store_true", help="with --dry-run: do not mask sample emails")
    p.set_defaults(func=cmd_request, needs_config=True)

    p = sub.add_parser("config", help="configuration tools")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    c = csub.add_parser("check", help="validate the config file (and that every key can be read)")
    c.add_argument("--config", required=True)
    c.add_argument("--online", action="store_true",
                   help="also check the API key, every list id and every custom field against ActiveCampaign")
    c.set_defaults(func=cmd_config_check, needs_config=True)

    from worker.sim import cli as sim_cli

    p = sub.add_parser("simulate", help="run the ActiveCampaign simulator (tests, demos, benchmarks)")
    sim_cli.add_arguments(p)
    p.set_defaults(func=lambda a, _c: sim_cli.run(a), needs_config=False)

    from worker import demo

    p = sub.add_parser("demo", help="the whole flow on this machine: simulator + sample segment + sync")
    demo.add_arguments(p)
    p.set_defaults(func=lambda a, _c: demo.run(a), needs_config=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_level, args.log_format, args.command)
    try:
        config = load_config(args.config) if args.needs_config else None
        return int(args.func(args, config) or 0)
    except ConfigError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
