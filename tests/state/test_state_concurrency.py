"""Concurrent writers: one winner per put_if_absent, no lost compare-and-swap, no torn reads."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from worker.state import FileStore, StateStore, open_store

WRITERS = 8
KEYS = 12


def test_put_if_absent_has_exactly_one_winner_among_threads(store: StateStore) -> None:
    for k in range(KEYS):
        key = f"exports/vip/runs/r{k}/completed"
        barrier = threading.Barrier(WRITERS)

        def attempt(writer: int, key: str = key, barrier: threading.Barrier = barrier) -> bool:
            barrier.wait()
            return store.put_if_absent(key, f"writer-{writer}".encode())

        with ThreadPoolExecutor(WRITERS) as pool:
            won = list(pool.map(attempt, range(WRITERS)))
        assert won.count(True) == 1, won
        assert store.get(key) == f"writer-{won.index(True)}".encode()


def _race_in_process(root: str, writer: int, start: Any) -> list[int]:
    """In a child process: try to create every key; return the indexes this process won."""
    store = open_store(root)
    start.wait()
    return [k for k in range(KEYS * 4) if store.put_if_absent(f"locks/k{k}", f"p{writer}".encode())]


def test_put_if_absent_has_exactly_one_winner_among_processes(tmp_path: Path) -> None:
    root = str(tmp_path / "state")
    context = multiprocessing.get_context("fork")
    with context.Manager() as manager, context.Pool(4) as pool:
        start = manager.Event()  # a start gate, so the four processes race for the same keys
        pending = [pool.apply_async(_race_in_process, (root, w, start)) for w in range(4)]
        start.set()
        results = [p.get(timeout=30) for p in pending]
    winners: dict[int, int] = {}
    for writer, won in enumerate(results):
        for k in won:
            assert k not in winners, f"key {k} won by {winners[k]} and {writer}"
            winners[k] = writer
    assert sorted(winners) == list(range(KEYS * 4))
    store = FileStore(root)
    for k, writer in winners.items():
        assert store.get(f"locks/k{k}") == f"p{writer}".encode()


def test_compare_and_swap_loses_no_update(store: StateStore) -> None:
    key = "exports/vip/counter"
    store.put(key, b"0")

    def increment(times: int) -> int:
        conflicts = 0
        for _ in range(times):
            while True:
                found = store.get_versioned(key)
                assert found is not None
                data, version = found
                if store.replace_if_unchanged(key, str(int(data) + 1).encode(), version):
                    break
                conflicts += 1
        return conflicts

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(increment, [10] * 4))
    assert store.get(key) == b"40"


def test_readers_never_see_a_partial_value(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "state")
    values = [bytes([n]) * (2 << 20) for n in (1, 2)]
    store.put("exports/vip/synced", values[0])
    stop = threading.Event()
    torn: list[int] = []

    def read() -> None:
        while not stop.is_set():
            data = store.get("exports/vip/synced")
            if data not in values:
                torn.append(len(data or b""))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(20):
            store.put("exports/vip/synced", values[i % 2])
    finally:
        stop.set()
        reader.join()
    assert torn == []
