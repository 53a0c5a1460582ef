"""`create_app`: one aiohttp application simulating one ActiveCampaign account.

The app owns its state and its background batch processor, so several simulators (one per test, or a
"second account") can run side by side in one process without sharing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from worker.sim import api, api_contacts, inspect_api
from worker.sim.middleware import api_middleware
from worker.sim.processor import run_processor
from worker.sim.settings import SimSettings
from worker.sim.state import STATE, SimState

#: aiohttp refuses bodies above this with its own 413; below it, bulk_import applies AC's 399,999-byte
#: rule itself so the answer is AC-shaped JSON.
CLIENT_MAX_SIZE = 8 * 1024 * 1024

_PROCESSOR: web.AppKey[asyncio.Task[None]] = web.AppKey("sim_processor", asyncio.Task)


def create_app(settings: SimSettings | None = None) -> web.Application:
    """Build the simulator app (AC routes under /api/3/, inspection routes under /_sim/)."""
    app = web.Application(middlewares=[api_middleware], client_max_size=CLIENT_MAX_SIZE)
    app[STATE] = SimState(settings or SimSettings())
    app.add_routes(api.routes)
    app.add_routes(api_contacts.routes)
    app.add_routes(inspect_api.routes)
    app.cleanup_ctx.append(_processor_ctx)
    return app


async def _processor_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the batch processor for the app's lifetime; cancel it (and pending callbacks) on cleanup."""
    task = asyncio.create_task(run_processor(app[STATE]), name="sim-batch-processor")
    app[_PROCESSOR] = task
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
