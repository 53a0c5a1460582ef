"""Errors name the line and the problem, never a person's data (issue 19 review, defect 5).

Real files through ``read_pages`` and the planner's column check. The messages go into ``export.failed``
(published to whoever listens) and into logs, so an email or a row's content must not be in them: a file
without a header once put its first member's email and name in the error, for instance.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from snapshot_support import read_all

from worker.snapshot import SnapshotError, read_pages, with_column

EMAIL = "alice.smith@example.com"


def _error(uri: str, column: str | None = None) -> str:
    with pytest.raises(SnapshotError) as caught:
        pages = read_pages(uri)
        if column is not None:
            pages = with_column(pages, column, "exports.vip.mapping.email")
        list(pages)
    return str(caught.value)


def test_a_csv_without_a_header_is_named_without_its_first_row(write: Callable[..., Path]) -> None:
    path = write("seg.csv", f"{EMAIL},Alice Smith,+44 7700 900123\nbob@example.com,Bob,1\n".encode())
    text = _error(str(path), "EmailAddress")
    assert "alice" not in text.lower() and "Smith" not in text and "900123" not in text
    assert "line 1, read as the header" in text and "the file has no header line" in text


def test_a_duplicate_column_that_is_an_email_is_masked(write: Callable[..., Path]) -> None:
    path = write("seg.csv", f"{EMAIL},{EMAIL}\nx,y\n".encode())
    text = _error(str(path))
    assert "alice.smith" not in text and "twice in its header (line 1" in text


@pytest.mark.parametrize(("data", "line"), [
    (f'email,name\nok@example.com,A\n{EMAIL},"Alice\n'.encode(), 3),        # an open quote
    (f'email,name\nok@example.com,A\n{EMAIL},"Alice"x\n'.encode(), 3),      # text after a closing quote
    (f'email,name\nok@example.com,A\n{EMAIL},Alice,extra\n'.encode(), 3),   # a stray delimiter
    (f'email,name\nok@example.com,A\n{EMAIL},Al\xffice\n'.encode("latin-1"), 3),  # invalid UTF-8
])
def test_csv_damage_names_the_line_not_the_row(write: Callable[..., Path], data: bytes, line: int) -> None:
    text = _error(str(write("seg.csv", data)))
    assert "alice" not in text.lower() and f"line {line}" in text


@pytest.mark.parametrize("data", [
    f'{{"email": "ok@example.com"}}\n{{"email": "{EMAIL}", oops}}\n'.encode(),
    f'{{"email": "ok@example.com"}}\n"{EMAIL}"\n'.encode(),
    f'{{"email": "ok@example.com"}}\n{{"email": "{EMAIL}"'.encode(),
])
def test_jsonl_damage_names_the_line_not_the_row(write: Callable[..., Path], data: bytes) -> None:
    text = _error(str(write("seg.jsonl", data)))
    assert "alice" not in text.lower() and "line 2" in text


def test_a_field_value_that_is_an_email_is_masked_in_the_reason(write: Callable[..., Path]) -> None:
    from worker.contacts.fields import ResolvedField
    from worker.contacts.mapping import Mapper
    from worker.settings import parse_config

    cfg = parse_config({"connections": {"c": {"hostname": "a.api-us1.com", "api_key_env": "X",
                                              "data_privacy_consent": True}},
                        "exports": {"x": {"segment": "s", "connection": "c", "list_id": 3,
                                          "mapping": {"email": "email"}, "fields": {"SCORE": "Score"}}}})
    mapper = Mapper(cfg.exports["x"], resolved={"SCORE": ResolvedField("SCORE", 7, "Score", "SCORE", "number")})
    pages = read_all(str(write("seg.jsonl", f'{{"email": "ok@example.com", "Score": "{EMAIL}"}}\n'.encode())))
    [(line, _, reason)] = mapper.map_page(pages[0].rows).invalid
    assert line == 1 and "alice.smith" not in reason and "***@example.com" in reason and "SCORE" in reason
