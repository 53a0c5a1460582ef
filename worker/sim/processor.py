"""The background task that applies due batches and fires their callbacks.

One loop per app (not a task per batch) keeps ordering trivially FIFO and costs nothing while idle. It
sleeps until the oldest pending batch is due, applies every due batch, and yields to the event loop
between batches so API requests keep flowing while a large backlog is applied.

Callbacks are AC's way to avoid polling: when a batch with a `callback` finishes, the simulator calls
the URL (documented choice: a JSON body for POST; see the package docstring). Delivery is best effort,
once, with a 5 s timeout, like a webhook; failures are only counted in `/_sim/stats`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import aiohttp
import orjson

from worker.sim.imports import Batch
from worker.sim.state import SimState

CALLBACK_TIMEOUT = aiohttp.ClientTimeout(total=5.0)


async def run_processor(state: SimState) -> None:
    """Apply batches as they fall due, forever (cancelled on app cleanup)."""
    session: aiohttp.ClientSession | None = None
    try:
        while True:
            pending = state.imports.pending
            if not pending:
                state.wakeup.clear()
                await state.wakeup.wait()
                continue
            wait = pending[0].due - time.monotonic()
            if wait > 0:
                state.wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(state.wakeup.wait(), timeout=wait)
                continue
            batch = pending.popleft()
            state.imports.finish(batch, state.store)  # no await since reading `pending`: same Imports
            if batch.callback is not None:
                if session is None or session.closed:
                    session = aiohttp.ClientSession(timeout=CALLBACK_TIMEOUT)
                task = asyncio.create_task(_deliver(state, session, batch))
                state.pending_callbacks.add(task)
                task.add_done_callback(state.pending_callbacks.discard)
            await asyncio.sleep(0)
    finally:
        for task in list(state.pending_callbacks):
            task.cancel()
        if session is not None:
            await session.close()


def callback_payload(batch: Batch, detailed: bool) -> dict[str, Any]:
    """What the simulator reports to a callback (undocumented by AC; see the package docstring)."""
    body: dict[str, Any] = {"batchId": batch.id, "status": batch.final}
    if detailed:
        body["success"] = len(batch.success)
        body["failure"] = len(batch.failure)
        body["failureReasons"] = [f"{r['email']}: {r['reason']}" for r in batch.reasons]
    return body


async def _deliver(state: SimState, session: aiohttp.ClientSession, batch: Batch) -> None:
    callback = batch.callback or {}
    url = callback["url"]
    if "://" not in url:
        url = "http://" + url
    headers = dict(callback["headers"])
    params = dict(callback["params"])
    try:
        if callback["requestType"] == "GET":
            query = {**params, "batchId": batch.id, "status": str(batch.final)}
            async with session.get(url, params=query, headers=headers) as resp:
                ok = resp.status < 400
        else:
            body = {**params, **callback_payload(batch, callback["detailed_results"])}
            headers.setdefault("Content-Type", "application/json")
            async with session.post(url, data=orjson.dumps(body), headers=headers) as resp:
                ok = resp.status < 400
    except (aiohttp.ClientError, TimeoutError, ValueError):
        ok = False
    state.counters["callbacks_sent" if ok else "callbacks_failed"] += 1
