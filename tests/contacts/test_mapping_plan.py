"""Pure logic: email rule, mapping, fingerprints, diff and batching limits."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.contacts.fields import ResolvedField
from worker.contacts.mapping import Mapped, Mapper, mask_email, valid_email
from worker.contacts.plan import ADD, MAX_BODY_BYTES, REMOVE, UPDATE, Planner
from worker.contacts.synced import SKIPPED, SyncedState, encode_v1
from worker.settings import parse_config
from worker.snapshot import Page


def export(**over):
    raw = {"segment": "s", "connection": "c", "list_id": 3,
           "mapping": {"email": "E", "first_name": "F", "last_name": "L", "phone": "P"}}
    raw.update(over)
    cfg = parse_config({"connections": {"c": {"hostname": "a.api-us1.com", "api_key_env": "X",
                                              "data_privacy_consent": True}},
                        "exports": {"x": raw}})
    return cfg.exports["x"]


@pytest.mark.parametrize("email", ["a@b.co", "first.last+tag@sub.example.com", "x_y@ex-ample.org",
                                   "o'neil@example.ie", "u@xn--p1ai.xn--p1ai"])
def test_valid_emails(email):
    assert valid_email(email)


@pytest.mark.parametrize("email", ["", "@example.com", "a@@b.com", "a@b", "a@b.c", "a b@c.com", "(a)@b.com",
                                   "a;b@c.com", "a@b.c0m", "a@.com", "a<b>@c.com", 'a"b@c.com', "a\\b@c.com",
                                   "a[b]@c.com", "a,b@c.com", "a:b@c.com"])
def test_invalid_emails(email):
    assert not valid_email(email)


def test_mask_email():
    assert mask_email("alice@example.com") == "a***@example.com"
    assert "alice" not in mask_email("alice@example.com")
    assert mask_email("") == "***"


def test_mapping_normalizes_and_reports():
    m = Mapper(export(tags=["vip"]))
    ok = m.map({"E": "  Alice@Example.COM ", "F": " Alice ", "L": "", "P": 5551234})
    assert isinstance(ok, Mapped)
    assert ok.contact == {"email": "alice@example.com", "first_name": "Alice", "phone": "5551234",
                          "tags": ["vip"], "subscribe": [{"listid": 3}]}
    assert orjson.loads(ok.body) == ok.contact
    assert "missing email" in m.map({"F": "x"})
    assert "malformed" in m.map({"E": "nope"})
    assert "not a string" in m.map({"E": 12})
    assert "must be text" in m.map({"E": "a@b.co", "F": {"nested": 1}})


def test_fingerprint_covers_every_sent_value():
    m = Mapper(export())
    base = m.map({"E": "a@b.co", "F": "A", "L": "B", "P": "1"})
    same = m.map({"E": "A@B.CO ", "F": "A", "L": "B", "P": "1", "Unmapped": "zzz"})
    other = m.map({"E": "a@b.co", "F": "A", "L": "B", "P": "2"})
    other_list = Mapper(export(list_id=4)).map({"E": "a@b.co", "F": "A", "L": "B", "P": "1"})
    assert base.fingerprint == same.fingerprint
    assert base.fingerprint != other.fingerprint
    assert base.fingerprint != other_list.fingerprint


def page(rows):
    return Page("file:///snap.jsonl", [(i + 2, r) for i, r in enumerate(rows)])


def test_diff_added_changed_unchanged_left_skipped():
    m = Mapper(export())
    fp = {e: m.map({"E": e, "F": "x"}).fingerprint for e in ("a@x.co", "b@x.co", "c@x.co", "s@x.co")}
    synced = {"a@x.co": (fp["a@x.co"], "", ""), "b@x.co": ("0" * 16, "", ""), "gone@x.co": ("1" * 16, "", ""),
              "s@x.co": (fp["s@x.co"], SKIPPED, ""), "gone-skipped@x.co": ("2" * 16, SKIPPED, "")}
    planner = Planner(m, synced)
    rows = [{"E": "a@x.co", "F": "x"}, {"E": "b@x.co", "F": "x"}, {"E": "c@x.co", "F": "x"},
            {"E": "C@x.co", "F": "x"}, {"E": "bad"}, {"E": "s@x.co", "F": "x"}]
    parts = list(planner.plan([page(rows)]))
    t = planner.totals
    assert (t.profiles, t.invalid, t.duplicates, t.unchanged, t.to_add, t.to_update, t.to_remove, t.skipped,
            t.dropped) == (6, 1, 1, 1, 1, 1, 1, 1, 1)
    batches = [b for p in parts for b in p.batches]
    sent = {(e, op) for b in batches for e, op in zip(b.emails, b.ops, strict=True)}
    assert sent == {("c@x.co", ADD), ("b@x.co", UPDATE), ("gone@x.co", REMOVE)}
    removal = next(c for b in batches for c in b.contacts if c["email"] == "gone@x.co")
    assert removal == {"email": "gone@x.co", "unsubscribe": [{"listid": 3}]}
    assert parts[-1].dropped == ["gone-skipped@x.co"]
    assert [r[1] for r in parts[0].invalid] == [6]


def test_full_resends_everything_and_keep_mode_drops_leavers():
    m = Mapper(export())
    fp = m.map({"E": "a@x.co"}).fingerprint
    planner = Planner(m, {"a@x.co": (fp, "", ""), "old@x.co": (fp, "", "")}, full=True, unsubscribe_leavers=False)
    parts = list(planner.plan([page([{"E": "a@x.co"}])]))
    assert planner.totals.to_update == 1 and planner.totals.to_remove == 0
    assert parts[-1].dropped == ["old@x.co"]


def test_batches_respect_count_and_byte_limits():
    m = Mapper(export(fields={"BIG": "Big"}), resolved={"BIG": ResolvedField("BIG", 7, "Big", "BIG", "text")})
    rows = [{"E": f"user{i}@example.com", "Big": "x" * (200 if i % 3 else 5000)} for i in range(3000)]
    planner = Planner(m, {})
    batches = [b for p in planner.plan([page(rows[:1234]), page(rows[1234:])]) for b in p.batches]
    assert sum(len(b.emails) for b in batches) == 3000
    assert [b.number for b in batches] == list(range(len(batches)))
    for b in batches:
        assert len(b.contacts) <= 250
        body = orjson.dumps({"contacts": b.contacts})
        assert len(body) <= MAX_BODY_BYTES
        assert len(body) == b.size  # the planner measures exactly what will be sent
    # the byte limit, not the count, binds here: batches are nearly full by bytes
    assert any(len(b.contacts) < 250 for b in batches[:-1])
    assert all(b.size > MAX_BODY_BYTES - 5100 for b in batches[:-1] if len(b.contacts) < 250)


def test_plan_is_deterministic():
    m = Mapper(export())
    rows = [{"E": f"u{i}@example.com", "F": str(i)} for i in range(700)]
    synced = {f"u{i}@example.com": ("0" * 16, "", "") for i in range(0, 900, 2)}
    a = [b.to_record() for p in Planner(m, synced).plan([page(rows)]) for b in p.batches]
    b = [b.to_record() for p in Planner(m, synced).plan([page(rows)]) for b in p.batches]
    assert a == b


def test_synced_v1_reads_back_and_decodes_without_a_store():
    entries = {"b@x.co": ("00000000000000ab", "", ""), "a@x.co": ("00000000000000cd", SKIPPED, ""),
               "c@x.co": ("", "u", "1700000000")}
    data = encode_v1(entries, "run-1")
    assert data.splitlines()[1].startswith(b"a@x.co")  # sorted
    back = SyncedState.decode(data)
    assert dict(back.entries()) == entries and back.run_id == "run-1" and back.subscribed() == 1
    assert dict(SyncedState.decode(None).entries()) == {} and len(SyncedState()) == 0
    with pytest.raises(ValueError):
        SyncedState.decode(b"garbage\n")


def test_leavers_come_in_parts_and_the_first_carries_every_count():
    m = Mapper(export())
    synced = {f"gone{i}@x.co": ("0" * 16, "", "") for i in range(23)}
    synced.update({f"s{i}@x.co": ("0" * 16, SKIPPED, "") for i in range(4)})
    synced["u@x.co"] = ("", "u", "1700000000")
    planner = Planner(m, synced, leavers_per_part=5)
    parts = list(planner.plan([page([{"E": "new@x.co"}])]))
    leaver_parts = parts[1:]
    assert len(leaver_parts) == 6  # 27 leavers (23 removed, 4 skipped ones dropped), 5 a part
    assert (leaver_parts[0].counts.to_remove, leaver_parts[0].counts.dropped) == (23, 4)
    assert all(p.counts.to_remove == 0 and p.counts.dropped == 0 for p in leaver_parts[1:])
    removed = [e for p in parts for b in p.batches for e, op in zip(b.emails, b.ops, strict=True) if op == REMOVE]
    assert sorted(removed) == sorted(e for e in synced if e.startswith("gone"))
    assert sorted(e for p in parts for e in p.dropped) == sorted(e for e in synced if e.startswith("s"))
    assert [b.number for p in parts for b in p.batches] == sorted(b.number for p in parts for b in p.batches)
    assert (planner.totals.to_remove, planner.totals.dropped, planner.totals.to_add) == (23, 4, 1)


def test_duplicates_across_pages_and_within_a_page_keep_the_first():
    m = Mapper(export())
    synced = {"old@x.co": (m.map({"E": "old@x.co", "F": "1"}).fingerprint, "", "")}
    p1 = [{"E": "a@x.co", "F": "first"}, {"E": "A@x.co ", "F": "second"}, {"E": "old@x.co", "F": "1"},
          {"E": "old@x.co", "F": "changed"}]
    p2 = [{"E": "a@x.co", "F": "third"}, {"E": "old@x.co", "F": "x"}, {"E": "b@x.co"}]
    planner = Planner(m, synced)
    parts = list(planner.plan([page(p1), page(p2)]))
    sent = {c["email"]: c for p in parts for b in p.batches for c in b.contacts}
    assert set(sent) == {"a@x.co", "b@x.co"} and sent["a@x.co"]["first_name"] == "first"
    t = planner.totals
    assert (t.duplicates, t.unchanged, t.to_add, t.to_update, t.to_remove) == (4, 1, 2, 0, 0)


@settings(max_examples=300)
@given(st.lists(st.sampled_from([*'aZ09._-+@"(),:;<>[]\\ \t\né', "xn--p1ai", ".co", ".c0m", "@x.co"]),
                max_size=12).map("".join))
def test_the_mapper_applies_the_email_rule_exactly(text):
    """The mapper checks the rule in halves (with a memo per domain): the same verdict as the whole rule."""
    m = Mapper(export())
    got = m.map({"E": text})
    email = text.strip().lower()
    if not email:
        assert "missing email" in got
    elif valid_email(email):
        assert isinstance(got, Mapped) and got.email == email
    else:
        assert got == "malformed email (fails ActiveCampaign's email format rule)"


def test_an_invalid_row_with_a_valid_email_keeps_its_member_out_of_the_leavers():
    """Issue 19 review: a bad value in another column must not make the member a leaver."""
    m = Mapper(export())
    fp = m.map({"E": "a@x.co", "F": "x"}).fingerprint
    synced = {"a@x.co": (fp, "", ""), "b@x.co": (fp, "", ""), "gone@x.co": (fp, "", ""),
              "s@x.co": (fp, SKIPPED, ""), "c@x.co": (fp, "", "")}
    planner = Planner(m, synced)
    rows = [{"E": "a@x.co", "F": "x"}, {"E": " B@X.co", "F": "x" * 300}, {"E": "s@x.co", "F": {"bad": 1}},
            {"E": "c@x.co", "F": "x" * 300}, {"E": "not-an-email", "F": "x"}]
    later = [{"E": "c@x.co", "F": "fixed"}]  # a valid row of a held email later on is still sent
    parts = list(planner.plan([page(rows), page(later)]))
    t = planner.totals
    assert (t.invalid, t.to_remove, t.dropped, t.duplicates, t.to_update) == (4, 1, 0, 0, 1)
    sent = {(e, op) for p in parts for b in p.batches for e, op in zip(b.emails, b.ops, strict=True)}
    assert sent == {("gone@x.co", REMOVE), ("c@x.co", UPDATE)}
