"""Custom field values per ActiveCampaign type, field resolution, tags from a profile field (pure logic)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from worker.activecampaign.client import _with_option_values
from worker.contacts.fields import (
    FieldValueError,
    ResolvedField,
    field_options,
    make_converter,
    parse_tags,
    resolve_fields,
)
from worker.contacts.mapping import Mapped, Mapper
from worker.run.report import CONTACT_LIMIT_REASON, CONTACT_LIMIT_TAIL
from worker.run.report import explain_contact_limit as _explain_contact_limit
from worker.settings import FieldMapping, parse_config


def export(**over: Any):
    raw = {"segment": "s", "connection": "c", "list_id": 3, "mapping": {"email": "E", "first_name": "F"}}
    raw.update(over)
    cfg = parse_config({"connections": {"c": {"hostname": "a.api-us1.com", "api_key_env": "X",
                                              "data_privacy_consent": True}},
                        "exports": {"x": raw}})
    return cfg.exports["x"]


def field(ftype: str, options: tuple[str, ...] | None = None, key: str = "K") -> ResolvedField:
    return ResolvedField(key, 7, "Title", key, ftype, options)


def convert(ftype: str, value: Any, *, options: tuple[str, ...] | None = None, **mapping: Any) -> str | None:
    conv = make_converter(field(ftype, options), FieldMapping("src", **mapping))
    assert conv is not None, f"{ftype} should have a converter"
    return conv(value)


def refused(ftype: str, value: Any, **kw: Any) -> str:
    with pytest.raises(FieldValueError) as info:
        convert(ftype, value, **kw)
    return str(info.value)


# ------------------------------------------------------------------------------------------ text, number
@pytest.mark.parametrize("ftype", ["text", "textarea", "hidden", "some-future-type"])
def test_text_types_take_strings_as_they_are(ftype):
    assert make_converter(field(ftype)) is None  # the mapper's fast path: strings as they are


@pytest.mark.parametrize(("value", "sent"), [
    (42, "42"), (-7, "-7"), (1.0, "1"), (2.5, "2.5"), (0.1, "0.1"), (1e20, "100000000000000000000"),
    ("42", "42"), (" 42 ", "42"), ("-1.5", "-1.5"), ("2.50", "2.5"), ("1e3", "1000"), ("+5", "5"), ("-0", "0"),
    ("", None), ("   ", None), (None, None),
])
def test_number(value, sent):
    assert convert("number", value) == sent


@pytest.mark.parametrize(("value", "needle"), [
    ("1,5", "not a number"), ("12 apples", "not a number"), ("1_000", "not a number"), (float("nan"), "finite"),
    (float("inf"), "finite"), ("1e99", "out of range"), (True, "true/false"), ([1], "a list"),
    ({"n": 1}, "an object"),
])
def test_number_refusals(value, needle):
    assert needle in refused("number", value)


# ------------------------------------------------------------------------------------------ dates
@pytest.mark.parametrize(("value", "sent"), [
    ("2024-03-05", "2024-03-05"),
    ("20240305", "2024-03-05"),  # ISO 8601 basic form
    ("2024-03-05T10:00:00Z", "2024-03-05"),
    ("2024-03-05T23:30:00-05:00", "2024-03-05"),  # the date as written, no time zone shift
    (1_700_000_000, "2023-11-14"),  # epoch seconds, UTC
    (1_700_000_000.9, "2023-11-14"),
    ("1700000000", "2023-11-14"),
    (-86_400, "1969-12-31"),
    ("", None), (None, None),
])
def test_date(value, sent):
    assert convert("date", value) == sent


def test_day_first_dates_only_when_the_mapping_says_so():
    assert convert("date", "05/03/2024", date_format="DD/MM/YYYY") == "2024-03-05"
    assert convert("date", "03/05/2024", date_format="MM/DD/YYYY") == "2024-03-05"
    assert convert("date", "5.3.2024", date_format="DD.MM.YYYY") == "2024-03-05"
    assert convert("date", "2024-03-05", date_format="DD/MM/YYYY") == "2024-03-05"  # ISO is never ambiguous
    assert "set date_format" in refused("date", "05/03/2024")
    assert "DD/MM/YYYY" in refused("date", "31/02/2024", date_format="DD/MM/YYYY")


@pytest.mark.parametrize(("value", "needle"), [
    ("next tuesday", "not a date"), ("2024-13-01", "not a date"), ("2024-02-30", "not a date"),
    (1_700_000_000_000_000, "milliseconds"), ([2024, 3, 5], "a list"), (True, "true/false"),
])
def test_date_refusals(value, needle):
    assert needle in refused("date", value)


@pytest.mark.parametrize(("value", "sent"), [
    ("2024-03-05T10:00:00Z", "2024-03-05T10:00:00+00:00"),
    ("2024-03-05T10:00:00+02:00", "2024-03-05T08:00:00+00:00"),
    ("2024-03-05 10:00:00.987", "2024-03-05T10:00:00+00:00"),  # no offset: UTC; seconds precision
    ("2024-03-05", "2024-03-05T00:00:00+00:00"),
    (0, "1970-01-01T00:00:00+00:00"),
    ("1700000000", "2023-11-14T22:13:20+00:00"),
])
def test_datetime(value, sent):
    assert convert("datetime", value) == sent


def test_datetime_with_a_format():
    assert convert("datetime", "05/03/2024 14:30", date_format="DD/MM/YYYY HH:mm") == "2024-03-05T14:30:00+00:00"
    assert "not a date" in refused("datetime", "yesterday")


# ------------------------------------------------------------------------------------------ choices
TIERS = ("Gold", "Silver", "Bronze")


def test_dropdown_and_radio_take_one_of_the_options_in_their_spelling():
    for ftype in ("dropdown", "radio"):
        assert convert(ftype, "Gold", options=TIERS) == "Gold"
        assert convert(ftype, " silver ", options=TIERS) == "Silver"
        assert convert(ftype, "", options=TIERS) is None
        assert "not an option" in refused(ftype, "Platinum", options=TIERS)
        assert "'Gold'" in refused(ftype, "Platinum", options=TIERS)  # the reason lists the options
        assert "a list" in refused(ftype, ["Gold"], options=TIERS)
    assert convert("dropdown", 2, options=("1", "2")) == "2"


def test_choices_without_known_options_pass_unchecked():
    assert make_converter(field("dropdown", None)) is not None
    assert convert("dropdown", "Anything") == "Anything"
    assert convert("listbox", "a, b") == "||a||b||"


@pytest.mark.parametrize(("value", "sent"), [
    (["Bronze", "gold"], "||Gold||Bronze||"),  # the options' order: a re-ordered list is not a change
    ("Silver, Gold", "||Gold||Silver||"),
    ("||Silver||Gold||", "||Gold||Silver||"),  # already in AC's form
    (["Gold", "Gold", " "], "||Gold||"),
    ("Gold", "||Gold||"),
    ([], None), ("", None), (None, None),
])
def test_multi_value(value, sent):
    for ftype in ("listbox", "checkbox"):
        assert convert(ftype, value, options=TIERS) == sent


def test_multi_value_separator_and_refusals():
    assert convert("listbox", "Gold|Silver", options=TIERS, separator="|") == "||Gold||Silver||"
    assert "not an option" in refused("listbox", ["Gold", "Platinum"], options=TIERS)
    assert "holds null" in refused("checkbox", ["Gold", None], options=TIERS)
    assert "holds a list" in refused("checkbox", ["Gold", ["Silver"]], options=TIERS)
    assert "an object" in refused("checkbox", {"Gold": True}, options=TIERS)


# ------------------------------------------------------------------------------------------ resolving
ACCOUNT = [
    {"id": "1", "title": "Loyalty tier", "perstag": "LOYALTY_TIER", "type": "dropdown", "option_values": list(TIERS)},
    {"id": "2", "title": "Birthday", "perstag": "BIRTHDAY", "type": "date"},
    {"id": "3", "title": "Region", "perstag": "REGION_A", "type": "text"},
    {"id": "4", "title": "Region", "perstag": "REGION_B", "type": "text"},
    {"id": "5", "title": "Colours", "perstag": "COLOURS", "type": "listbox",
     "options": [{"id": "9", "value": "Red"}, {"id": "10", "value": "Blue"}]},
]


def test_resolve_by_perstag_title_and_percent_form():
    exp = export(fields={"LOYALTY_TIER": "Tier", "birthday": "B", "%COLOURS%": "C", "REGION_B": "R"})
    resolved, problems = resolve_fields(exp, ACCOUNT)
    assert problems == []
    assert {k: (r.id, r.type) for k, r in resolved.items()} == {
        "LOYALTY_TIER": (1, "dropdown"), "birthday": (2, "date"), "%COLOURS%": (5, "listbox"), "REGION_B": (4, "text")}
    assert resolved["LOYALTY_TIER"].options == TIERS
    assert resolved["%COLOURS%"].options == ("Red", "Blue")  # inline option objects are read too
    assert resolved["birthday"].options is None


def test_unknown_and_ambiguous_fields_are_named():
    exp = export(fields={"NOPE": "N", "Region": "R", "BIRTHDAY": "B"})
    resolved, problems = resolve_fields(exp, ACCOUNT)
    assert set(resolved) == {"BIRTHDAY"}
    assert len(problems) == 2
    assert "'NOPE'" in problems[0] and "matches no field" in problems[0] and "exports.x.fields" in problems[0]
    assert "'Region'" in problems[1] and "matches 2 fields" in problems[1] and "personalization tag" in problems[1]


def test_option_values_are_attached_from_the_side_loaded_list():
    fields = [{"id": "1", "options": ["11", "12"]}, {"id": "2", "options": []}]
    rows = [{"id": "12", "field": "1", "value": "B", "orderid": 2}, {"id": "11", "field": "1", "value": "A",
                                                                     "orderid": 1}]
    got = _with_option_values(fields, rows)
    assert field_options(got[0]) == ("A", "B")
    assert field_options(got[1]) is None


# ------------------------------------------------------------------------------------------ the mapper
def typed_mapper(**over: Any) -> Mapper:
    exp = export(fields={"LOYALTY_TIER": "Tier", "BIRTHDAY": {"field": "Birthday", "date_format": "DD/MM/YYYY"},
                         "SCORE": "Score", "NOTE": "Note"}, **over)
    resolved = {"LOYALTY_TIER": ResolvedField("LOYALTY_TIER", 1, "Tier", "LOYALTY_TIER", "dropdown", TIERS),
                "BIRTHDAY": ResolvedField("BIRTHDAY", 2, "Birthday", "BIRTHDAY", "date"),
                "SCORE": ResolvedField("SCORE", 3, "Score", "SCORE", "number"),
                "NOTE": ResolvedField("NOTE", 4, "Note", "NOTE", "text")}
    return Mapper(exp, resolved=resolved)


def test_mapper_converts_and_fingerprints_every_value():
    m = typed_mapper()
    base = {"E": "a@b.co", "Tier": "gold", "Birthday": "05/03/1990", "Score": "12.50", "Note": "hi"}
    got = m.map(base)
    assert isinstance(got, Mapped)
    assert got.contact["fields"] == [{"id": 1, "value": "Gold"}, {"id": 2, "value": "1990-03-05"},
                                     {"id": 3, "value": "12.5"}, {"id": 4, "value": "hi"}]
    assert orjson.loads(got.body) == got.contact
    same = m.map({**base, "Tier": "Gold", "Score": 12.5})  # the same values, spelled differently
    assert isinstance(same, Mapped) and same.fingerprint == got.fingerprint
    for change in ({"Note": "ho"}, {"Birthday": "06/03/1990"}, {"Score": 13}, {"Tier": "Silver"}):
        other = m.map({**base, **change})
        assert isinstance(other, Mapped) and other.fingerprint != got.fingerprint, change


def test_a_bad_value_makes_only_that_contact_invalid_with_the_field_named():
    m = typed_mapper()
    reason = m.map({"E": "a@b.co", "Birthday": "31/02/1990"})
    assert isinstance(reason, str)
    assert reason.startswith("custom field BIRTHDAY (profile field 'Birthday'): '31/02/1990' is not a date")
    assert "not an option" in m.map({"E": "a@b.co", "Tier": "Platinum"})
    assert "not a number" in m.map({"E": "a@b.co", "Score": "lots"})
    assert "a text field takes one text value" in m.map({"E": "a@b.co", "Note": {"x": 1}})
    ok = m.map({"E": "b@b.co", "Note": 5, "Birthday": ""})  # empty is not sent; a number is text
    assert isinstance(ok, Mapped) and ok.contact["fields"] == [{"id": 4, "value": "5"}]


def test_unresolved_field_is_an_error_not_a_silent_drop():
    with pytest.raises(ValueError, match="not resolved"):
        Mapper(export(fields={"TIER": "Tier"}))


# ------------------------------------------------------------------------------------------ tags
def test_parse_tags():
    assert parse_tags(" vip , sports,,VIP , ", ",") == ["vip", "sports"]
    assert parse_tags(["a", " b ", "", "A"], ",") == ["a", "b"]
    assert parse_tags("a;b", ";") == ["a", "b"]
    assert parse_tags([], ",") == []
    for odd, needle in ((3, "a number"), ({"a": 1}, "an object"), (True, "true/false"), (["a", None], "null"),
                        (["a", 3], "a number"), (["a", ["b"]], "a list"), (["x" * 300], "at most 255")):
        with pytest.raises(FieldValueError, match=needle):
            parse_tags(odd, ",")


def test_tags_from_a_profile_field_with_static_tags():
    m = Mapper(export(tags=["segment:vip", "VIP"], tag_field="Interests", tag_separator=";"))
    got = m.map({"E": "a@b.co", "Interests": " golf ; vip;  ;Tennis "})
    assert isinstance(got, Mapped) and got.contact["tags"] == ["segment:vip", "VIP", "golf", "Tennis"]
    for absent in ({}, {"Interests": None}, {"Interests": ""}, {"Interests": []}):
        plain = m.map({"E": "a@b.co", **absent})
        assert isinstance(plain, Mapped) and plain.contact["tags"] == ["segment:vip", "VIP"]
    reason = m.map({"E": "a@b.co", "Interests": ["golf", None]})
    assert isinstance(reason, str) and reason.startswith("tag field 'Interests': ") and "null" in reason
    assert "a number" in m.map({"E": "a@b.co", "Interests": 42})
    no_static = Mapper(export(tag_field="Interests"))
    got = no_static.map({"E": "a@b.co", "Interests": ["x"]})
    assert isinstance(got, Mapped) and got.contact["tags"] == ["x"]
    assert "tags" not in no_static.map({"E": "a@b.co"}).contact
    quiet = Mapper(export(exclude_automations=True)).map({"E": "a@b.co"})
    assert isinstance(quiet, Mapped) and quiet.contact["exclude_automations"] is True
    assert "exclude_automations" not in Mapper(export()).map({"E": "a@b.co"}).contact  # AC's default


# ------------------------------------------------------------------------------------------ reports
def test_contact_limit_is_named_when_the_tail_of_new_contacts_all_failed():
    from worker.activecampaign.importer import FAILED_NOT_IMPORTED

    def failed() -> dict[str, Any]:
        return {"email": "x@y.co", "stage": "failed", "reason": FAILED_NOT_IMPORTED, "operation": "add"}

    tail = [failed() for _ in range(CONTACT_LIMIT_TAIL)]
    early = failed()
    _explain_contact_limit([None, early, None, *tail], "x")
    assert all(r["reason"] == CONTACT_LIMIT_REASON and "contact limit" in r["detail"] for r in tail)
    assert early["reason"] == FAILED_NOT_IMPORTED  # a new contact was created after it: not the limit
    short = [failed() for _ in range(CONTACT_LIMIT_TAIL - 1)]
    _explain_contact_limit([None, *short], "x")
    assert all(r["reason"] == FAILED_NOT_IMPORTED for r in short)


def test_memoized_conversions_keep_equal_but_different_values_apart():
    calls: list[Any] = []

    def conv(value: Any) -> str:
        calls.append(value)
        return repr(value)

    from worker.contacts.fields import memoized

    memo = memoized(conv, size=2)
    assert [memo(v) for v in ("1", "1", 1, True, 1.0, ["a"], ["a"], ["a", 1])] == \
        ["'1'", "'1'", "1", "True", "1.0", "['a']", "['a']", "['a', 1]"]
    assert calls == ["1", 1, True, 1.0, ["a"], ["a", 1]]  # only text and lists of text are remembered
    memo("x")  # a full table starts over rather than growing
    assert memo("1") == "'1'" and calls[-1] == "1"
    multi = make_converter(field("listbox", TIERS), FieldMapping("src"))
    assert multi is not None and multi(["gold"]) == multi(["gold"]) == "||Gold||"
    with pytest.raises(FieldValueError):
        multi(["Platinum"])
    with pytest.raises(FieldValueError):  # failures are not remembered as answers
        multi(["Platinum"])
