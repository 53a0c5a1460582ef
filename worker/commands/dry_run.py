"""Print a dry run (``sync --dry-run``, ``request --dry-run``): the preview as JSON, its verdict as the exit code."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

from worker.commands import common

if TYPE_CHECKING:
    from worker.run.engine import Engine
    from worker.run.types import RunSpec


def show_preview(engine: Engine, spec: RunSpec, show_emails: bool) -> int:
    """Exit 1 when the preview cannot be made or a real run would fail (the reason also on stderr), else 0."""
    from worker.run.preview import PreviewError, preview, would_fail

    try:
        result = asyncio.run(preview(engine, spec, show_emails=show_emails))
    except PreviewError as exc:
        return common.fail(str(exc), common.EXIT_FAILED)
    common.print_json(result)
    reason = would_fail(result)
    if reason:
        sys.stderr.write(f"segment-export: a run would fail: {reason}\n")
        return common.EXIT_FAILED
    return common.EXIT_OK
