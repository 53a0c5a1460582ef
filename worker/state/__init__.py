"""The state store: the records a run leaves so that any worker can resume or finish it.

Usage::

    store = open_store(config.worker.state_url)   # file://./state or s3://bucket/prefix
    if store.put_if_absent(f"exports/{name}/runs/{run_id}/completed", event_bytes): ...

Two backends with one contract (get, put, put-if-absent, compare-and-swap, list, list with
modification times (retention), delete): a folder for one host, S3 for many. A conditional write whose
answer was lost is resolved by reading back, in ``StateStore`` itself, for every backend.

May import: ``worker.clients``, ``worker.privacy`` (credentials masked in the URLs its messages show).
"""

from worker.state.errors import StateError, WriteUnanswered
from worker.state.file_store import FileStore
from worker.state.s3_store import S3Store
from worker.state.store import StateStore
from worker.state.store_url import open_store

__all__ = ["FileStore", "S3Store", "StateError", "StateStore", "WriteUnanswered", "open_store"]
