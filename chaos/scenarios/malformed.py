"""1,000 property-generated malformed events mixed with valid ones, on one worker.

The bodies come from ``tests/events/strategies.py`` (``sample_malformed``: a reproducible Hypothesis draw
spread over every kind: not JSON, broken UTF-8, not an object, unknown type, bad version, one broken field,
oversized), plus two well-formed events this worker must refuse (a snapshot outside ``snapshot_prefixes``,
an unknown export). Valid refreshes of five segments (one export and list each) are interleaved. Every
malformed body must end in the dead-letter queue with its reason and the reason class the schema tests
expect; every valid one must complete; the worker process is the same one throughout.
"""

from __future__ import annotations

import uuid
from collections import Counter

import orjson

from chaos.stage import Stage
from tests.e2e.conftest import ExportSpec, validate
from worker.broker import ERROR_CLASS_HEADER
from worker.contacts.samples import make_segment
from worker.events.envelopes import now_iso

SEGMENTS = 5


def _refused_but_well_formed(stage: Stage) -> list[tuple[bytes, str]]:
    outside = stage.refreshed("file:///etc/passwd.jsonl", "outside-1", segment="seg-0")
    unknown = validate({"type": "export.requested", "version": 1, "id": str(uuid.uuid4()),
                        "occurred_at": now_iso(), "export": "no-such-export"})
    return [(orjson.dumps(outside), "forbidden_uri"), (orjson.dumps(unknown), "unknown_export")]


def malformed_events(stage: Stage) -> None:
    from tests.events.strategies import sample_malformed

    bad = sample_malformed(stage.size.malformed) + _refused_but_well_formed(stage)
    bodies = [b for b, _ in bad]
    stage.expected_dead = Counter(bodies)
    exports = [ExportSpec(f"e{i}", i + 1, segment=f"seg-{i}") for i in range(SEGMENTS)]
    worker = stage.start_worker(stage.config(exports=exports))
    per = max(1, stage.size.profiles // SEGMENTS)
    valid: list[bytes] = []
    for i in range(SEGMENTS):
        seg = make_segment(range(i * per, (i + 1) * per), invalid_rate=0.02, seed=29 + i)
        stage.expected[i + 1] = seg.expected
        uri = stage.put_snapshot(f"s{i}", seg.profiles)
        event = stage.refreshed(uri, f"ok-{i}", segment=f"seg-{i}")
        stage.runs[_run_id(f"e{i}", f"ok-{i}")] = "succeeded"
        valid.append(orjson.dumps(event))
    step = len(bodies) // SEGMENTS
    mixed: list[bytes] = []
    for i in range(SEGMENTS):  # a valid one in the middle of each stretch of malformed ones
        mixed.extend(bodies[i * step:(i + 1) * step])
        mixed.insert(len(mixed) - step // 2, valid[i])
    mixed.extend(bodies[SEGMENTS * step:])
    stage.broker.publish_raw(mixed)

    stage.wait(lambda: len(stage.broker.read_dead()) >= len(bad), stage.size.timeout,
               f"{len(bad)} messages in the dead-letter queue", interval=0.5)
    for run_id in list(stage.runs):
        stage.wait_run(run_id)
    expected_class = dict(bad)
    wrong = [(body[:60], _text(h.get(ERROR_CLASS_HEADER))) for body, h in stage.broker.read_dead()
             if _text(h.get(ERROR_CLASS_HEADER)) != expected_class.get(body)]
    stage.check(not wrong, f"{len(wrong)} dead-lettered with another reason class than expected, e.g. {wrong[:2]}")
    classes = Counter(expected_class.values())
    stage.note(f"{len(bad)} malformed dead-lettered ({', '.join(f'{k} {v}' for k, v in sorted(classes.items()))})"
               f" among {SEGMENTS} valid refreshes")
    stage.check(worker.alive() and worker.text().count("worker consuming") == 1,
                "the worker did not handle every message in the same process")


def _run_id(export: str, refresh_id: str) -> str:
    from worker.run.runbook import run_id_for

    return run_id_for(export, refresh_id)


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
