"""forget's rewrites of run records keep them consistent: a batch's columns are cut at the same positions,
positions that records key on are renumbered, and nothing else changes."""

from __future__ import annotations

from worker.run.erasure import _accepted_without, _part_without, _scrub, normalize


def test_a_plan_part_loses_the_contact_in_every_column_and_untag_is_renumbered():
    header = {"invalid": [["f", 3, "X@Example.com ", "malformed"], ["f", 4, None, "missing"]],
              "dropped": ["x@example.com", "d@example.com"], "skipped": [], "kept_out": ["x@example.com"],
              "untag_dropped": [["x@example.com", ["vip"]], ["d@example.com", ["vip"]]],
              "batches": [{"n": 0, "ops": "aur", "emails": ["a@example.com", "x@example.com", "c@example.com"],
                           "fps": ["1", "2", "3"], "tg": [1, 2, 0], "untag": [[1, ["old"]], [2, ["vip"]]]}]}
    out, gone = _part_without(header, {"x@example.com"})
    assert gone == 5
    assert out["invalid"] == [["f", 4, None, "missing"]]
    assert out["dropped"] == ["d@example.com"] and out["kept_out"] == []
    assert out["untag_dropped"] == [["d@example.com", ["vip"]]]
    b = out["batches"][0]
    assert (b["emails"], b["fps"], b["ops"], b["tg"]) == (["a@example.com", "c@example.com"], ["1", "3"], "ar", [1, 0])
    assert b["untag"] == [[1, ["vip"]]]  # c moved from position 2 to 1


def test_an_accepted_record_renumbers_the_positions_it_keys_rejections_on():
    record = {"batch_id": "b1", "emails": ["a@x.com", "gone@x.com", "c@x.com", "d@x.com"],
              "rejected": {"1": "bad", "3": "worse"}, "kept_out": {"gone@x.com": "why", "c@x.com": "why"}}
    out, gone = _accepted_without(record, {"gone@x.com"})
    assert out["emails"] == ["a@x.com", "c@x.com", "d@x.com"]
    assert out["rejected"] == {"2": "worse"}  # d was 3, is 2; gone's own rejection went with it
    assert out["kept_out"] == {"c@x.com": "why"} and gone == 2


def test_reports_and_outcomes_drop_the_email_wherever_it_stands():
    final = {"n": 1, "failed": {"gone@x.com": "r", "a@x.com": "r"}, "skipped": {}}
    assert _scrub(final, {"gone@x.com"}) == ({"n": 1, "failed": {"a@x.com": "r"}, "skipped": {}}, 1)
    checkpoint = {"to_classify": [["gone@x.com", 7], ["a@x.com", 8]], "person": ["gone@x.com"], "phase": "classify"}
    assert _scrub(checkpoint, {"gone@x.com"}) == ({"to_classify": [["a@x.com", 8]], "person": [],
                                                   "phase": "classify"}, 2)
    assert normalize([" A@X.com ", "", "a@x.com"]) == {"a@x.com"}
