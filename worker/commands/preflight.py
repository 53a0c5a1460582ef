"""``config check --online``: the config against ActiveCampaign itself, before a run finds out.

For each connection: the API key with one cheap call; each export's list id; each custom field,
resolved exactly as a run resolves it (one listing, every page, shared by the connection's exports).
The result is one row per export (or one for a connection without exports), and a table for people.
A problem here would fail a run, so the command exits 2 when any row has one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from worker.settings import Config, ConfigError

if TYPE_CHECKING:
    from worker.activecampaign.client import ActiveCampaignClient
    from worker.settings import Export


@dataclass
class CheckRow:
    """What ActiveCampaign says about one export (or a connection without exports): empty problems = fine."""

    connection: str
    export: str = "-"
    list: str = "-"
    fields: str = "-"
    problems: str = ""


def check_keys_offline(config: Config) -> list[str]:
    """Problems reading the API keys the exports need (missing variable or file), sorted, without duplicates."""
    problems = set()
    for export in config.exports.values():
        try:
            config.connections[export.connection].api_key()
        except ConfigError as exc:
            problems.add(str(exc))
    return sorted(problems)


def check_online(config: Config) -> list[CheckRow]:
    """One row per export, connection by connection, from live ActiveCampaign answers."""

    async def check_all() -> list[CheckRow]:
        rows: list[CheckRow] = []
        for name in sorted(config.connections):
            rows.extend(await check_connection(config, name))
        return rows

    return asyncio.run(check_all())


async def check_connection(config: Config, conn_name: str) -> list[CheckRow]:
    from worker.activecampaign.client import ActiveCampaignClient, ActiveCampaignError
    from worker.activecampaign.limiter import AccountLimiter

    conn = config.connections[conn_name]
    exports = sorted((e for e in config.exports.values() if e.connection == conn_name), key=lambda e: e.name)
    rows = [CheckRow(conn_name, e.name, str(e.list_id)) for e in exports] or [CheckRow(conn_name)]

    def all_rows(problem: str) -> list[CheckRow]:
        for row in rows:
            row.problems = problem
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
            await _check_export(client, export, row, fields, fields_error)
    return rows


async def _check_export(client: ActiveCampaignClient, export: Export, row: CheckRow,
                        fields: list[dict[str, Any]] | None, fields_error: str) -> None:
    from worker.activecampaign.client import ActiveCampaignError
    from worker.contacts.fields import resolve_fields

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
        row.list = f"{export.list_id} {found.get('name', '')}".strip()
    if export.fields:
        if fields is None:
            problems.append(f"exports.{export.name}.fields: {fields_error}")
        else:
            resolved, field_problems = resolve_fields(export, fields)
            problems.extend(field_problems)
            row.fields = ", ".join(f"{k}=#{r.id} {r.type}" for k, r in resolved.items()) or "-"
            if field_problems:
                row.fields = f"{len(resolved)} of {len(export.fields)}: {row.fields}"
    row.problems = "; ".join(problems)


def render_table(rows: list[CheckRow], config_path: str) -> str:
    """The rows as an aligned table with a closing summary line."""
    columns = (("connection", "CONNECTION"), ("export", "EXPORT"), ("list", "LIST"), ("fields", "FIELDS RESOLVED"),
               ("problems", "PROBLEMS"))
    cells = [{k: str(getattr(r, k)) for k, _ in columns} for r in rows]
    widths = {k: max([len(title), *(len(c[k]) for c in cells)]) for k, title in columns[:-1]}
    lines = ["  ".join(title.ljust(widths.get(k, 0)) for k, title in columns).rstrip()]
    for c in cells:
        lines.append("  ".join([*(c[k].ljust(widths[k]) for k, _ in columns[:-1]), c["problems"] or "none"]))
    bad = sum(1 for r in rows if r.problems)
    lines.append("")
    lines.append(f"{config_path}: {len(rows)} checked, " + (f"{bad} with problems" if bad else "no problems"))
    return "\n".join(lines) + "\n"
