"""Must-show 4: malformed messages interleaved with valid ones.

Every malformed message ends in the dead-letter queue (the requests queue's name + ``-dlq``) with its
reason in the ``x-segment-export-error`` header/attribute (and the reason class that
``parse_event`` gives it); every valid one completes; the worker process is the same one throughout and
still alive at the end. The malformed bodies come from ``tests/events/strategies.py`` (a reproducible draw
spread over every kind: not JSON, broken UTF-8, not an object, unknown type, bad version, one broken field,
oversized), plus a few well-formed events this worker must refuse (a snapshot outside
``snapshot_prefixes``, an unknown export, a refresh dated tomorrow, a request naming a run id without being a
continuation, a continuation naming another refresh's run).
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tests.e2e.conftest import ExportSpec, refreshed, run_id_for, validate, wait_for, write_config
from tests.events.strategies import sample_malformed
from worker.broker import ERROR_CLASS_HEADER, ERROR_HEADER
from worker.contacts.samples import make_segment, write_jsonl
from worker.events.envelopes import now_iso

SEGMENTS = 5  # one export per segment (lists 1..5), so the valid refreshes never make each other stale


def _refused_but_well_formed(tmp_path) -> list[tuple[bytes, str]]:
    outside = refreshed(tmp_path / "snap" / "x.jsonl", segment="seg-0")
    outside["snapshot"]["uri"] = "file:///etc/passwd.jsonl"  # not under snapshot_prefixes
    unknown = validate({"type": "export.requested", "version": 1, "id": str(uuid.uuid4()),
                        "occurred_at": now_iso(), "export": "no-such-export"})
    # issue 15, review 3: a refresh dated tomorrow would become the newest recorded and make every genuine
    # refresh of seg-0 (ok-0 among them) stale until then
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    future = refreshed(tmp_path / "snap" / "s0.jsonl", segment="seg-0", occurred_at=tomorrow)
    # review 4: a request naming a run id runs its snapshot under that run (here: refresh ok-1's)
    snap = {"uri": f"file://{tmp_path / 'snap' / 's2.jsonl'}", "format": "jsonl"}
    named = validate({"type": "export.requested", "version": 1, "id": str(uuid.uuid4()), "occurred_at": now_iso(),
                      "export": "e1", "snapshot": snap})
    named_body = orjson.dumps({**named, "run_id": run_id_for("e1", "ok-1")})  # the schema refuses it
    foreign = validate({**named, "run_id": run_id_for("e1", "ok-1"), "refresh_id": "other", "continuation": 1,
                        "segment": {"id": "seg-1"}})
    return [(orjson.dumps(outside), "forbidden_uri"), (orjson.dumps(unknown), "unknown_export"),
            (orjson.dumps(future), "future_refresh"), (named_body, "schema"), (orjson.dumps(foreign), "foreign_run")]


@pytest.mark.parametrize("kind", ["rabbitmq", "sqs"])
def test_malformed_messages_dead_lettered_valid_ones_complete(tmp_path, sim, kind, request, workers):
    if kind == "rabbitmq":
        broker, n_bad = request.getfixturevalue("rabbit"), 200
    else:  # moto's SQS is slow: fewer, and only what SQS can carry
        broker, n_bad = request.getfixturevalue("make_sqs")(), 60
    bad = sample_malformed(n_bad, sqs_safe=kind == "sqs", include_oversized=kind != "sqs")
    bad += _refused_but_well_formed(tmp_path)
    exports = [ExportSpec(f"e{i}", i + 1, segment=f"seg-{i}") for i in range(SEGMENTS)]
    worker = workers(write_config(tmp_path, sim, broker, exports=exports))
    pid = worker.pid

    segs, valid = [], []
    for i in range(SEGMENTS):
        seg = make_segment(range(i * 1000, i * 1000 + 300), invalid_rate=0.02, seed=i)
        segs.append(seg)
        snap = write_jsonl(tmp_path / "snap" / f"s{i}.jsonl", seg.profiles)
        valid.append(orjson.dumps(refreshed(snap, segment=f"seg-{i}", refresh_id=f"ok-{i}")))
    bodies = [b for b, _ in bad]
    step = len(bodies) // SEGMENTS
    mixed: list[bytes] = []
    for i in range(SEGMENTS):  # a valid one in each stretch of malformed ones
        mixed.extend(bodies[i * step:(i + 1) * step])
        mixed.insert(len(mixed) - step // 2, valid[i])
    mixed.extend(bodies[SEGMENTS * step:])
    assert len(mixed) == len(bodies) + SEGMENTS
    broker.publish_raw(mixed)

    wait_for(lambda: len(broker.read_dead()) >= len(bad), 120,
             f"{len(bad)} messages in the dead-letter queue", interval=0.5, check=worker.assert_alive)
    broker.wait_completions(SEGMENTS, 120, check=worker.assert_alive)
    broker.wait_idle(60, check=worker.assert_alive)

    dead = broker.read_dead()
    assert Counter(b for b, _ in dead) == Counter(bodies), "the DLQ does not hold exactly the malformed messages"
    expected_class = dict(bad)
    for body, headers in dead:
        reason = headers.get(ERROR_HEADER)
        if isinstance(reason, bytes):
            reason = reason.decode()
        assert isinstance(reason, str) and reason.strip(), f"no {ERROR_HEADER} on {body[:80]!r}: {headers}"
        assert len(reason) <= 1000
        assert headers.get(ERROR_CLASS_HEADER) in (expected_class[body], expected_class[body].encode()), (
            body[:80], headers)

    done = broker.completions()
    assert sorted(e["export"] for e in done) == [f"e{i}" for i in range(SEGMENTS)]
    for e in done:
        i = int(e["export"][1:])
        assert e["status"] == "succeeded" and e["counts"]["added"] == len(segs[i].expected)
        sim.assert_list_exact(i + 1, segs[i].expected)
    assert [e for e in broker.events if e["type"] != "export.completed"] == []

    # the same process all along, still serving: one more valid event goes through
    assert worker.alive() and worker.pid == pid
    assert worker.text().count("worker consuming") == 1
    seg = make_segment([*range(0, 300), *range(9000, 9100)], invalid_rate=0.02, seed=0)  # seg-0 grows by 100
    broker.publish(refreshed(write_jsonl(tmp_path / "snap" / "last.jsonl", seg.profiles), segment="seg-0",
                             refresh_id="ok-last"))
    broker.wait_completions(1, 60, check=worker.assert_alive, export="e0", run_id=None)
    wait_for(lambda: len(broker.completions(export="e0")) == 2, 60, "the last refresh to complete",
             check=worker.assert_alive)
    sim.assert_list_exact(1, seg.expected)
    assert worker.alive() and worker.pid == pid
