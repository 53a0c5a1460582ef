"""The ingress's bearer tokens: from the environment and a file, several at once, the file re-read on change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from worker.service.tokens import TokenError, Tokens

A, B, C = "a" * 20, "b" * 24, "c" * 32


def test_env_and_file_tokens_are_accepted_others_are_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T", f"{A},{B}")
    f = tmp_path / "tokens"
    f.write_text(f"{C}\n")
    tokens = Tokens("T", str(f))
    for good in (A, B, C):
        assert tokens.accepts(f"Bearer {good}") and tokens.accepts(f"bearer  {good} ")
    for bad in (None, "", "Bearer", f"Basic {A}", f"Bearer {A}x", f"Bearer {A[:-1]}", A):
        assert not tokens.accepts(bad)
    assert A not in repr(tokens.__dict__)  # held as Secrets


def test_the_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    f = tmp_path / "tokens"
    f.write_text(A)
    tokens = Tokens(None, str(f))
    assert tokens.accepts(f"Bearer {A}") and not tokens.accepts(f"Bearer {B}")
    f.write_text(f"{A} {B}")  # rotation: the new one added
    os.utime(f, ns=(1, 2_000_000_000_000_000_000))
    assert tokens.accepts(f"Bearer {B}") and tokens.accepts(f"Bearer {A}")
    f.write_text(B)  # the old one removed
    os.utime(f, ns=(1, 3_000_000_000_000_000_000))
    assert tokens.accepts(f"Bearer {B}") and not tokens.accepts(f"Bearer {A}")
    f.unlink()  # the secret removed: its tokens are revoked
    assert not tokens.accepts(f"Bearer {B}")
    f.write_text(C)
    assert tokens.accepts(f"Bearer {C}") and not tokens.accepts(f"Bearer {B}")


def test_a_short_entry_in_the_file_is_ignored_and_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An operator's typo during rotation must not turn every request into an error or lock callers out."""
    f = tmp_path / "tokens"
    f.write_text(f"{A}\n")
    tokens = Tokens(None, str(f))
    f.write_text(f"{A}\nshort\n")
    os.utime(f, ns=(1, 2_000_000_000_000_000_000))
    with caplog.at_level("WARNING", logger="segment_export.ingress"):
        for _ in range(3):
            assert tokens.accepts(f"Bearer {A}")
            assert not tokens.accepts("Bearer short") and not tokens.accepts(f"Bearer {B}")
    (record,) = [r for r in caplog.records if "shorter than 16" in r.getMessage()]
    assert "1 entry" in record.getMessage() and "short\n" not in record.getMessage()
    assert A not in caplog.text


def test_a_deleted_or_emptied_file_revokes_its_tokens_with_a_log_line(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("T", A)
    f = tmp_path / "tokens"
    f.write_text(B)
    tokens = Tokens("T", str(f))
    with caplog.at_level("WARNING", logger="segment_export.ingress"):
        f.write_text("")
        os.utime(f, ns=(1, 2_000_000_000_000_000_000))
        assert not tokens.accepts(f"Bearer {B}") and tokens.accepts(f"Bearer {A}")  # the environment's stay
        f.write_text(B)
        os.utime(f, ns=(1, 3_000_000_000_000_000_000))
        assert tokens.accepts(f"Bearer {B}")
        f.unlink()
        assert not tokens.accepts(f"Bearer {B}") and not tokens.accepts(f"Bearer {B}")
    messages = [r.getMessage() for r in caplog.records]
    assert sum("no usable token: its tokens are revoked" in m for m in messages) == 1
    assert sum("is gone: its tokens are revoked" in m for m in messages) == 1


def test_a_header_that_is_not_utf8_holds_no_token() -> None:
    import os as _os

    _os.environ["TOKENS_TEST_UTF8"] = A
    try:
        tokens = Tokens("TOKENS_TEST_UTF8", None)
    finally:
        del _os.environ["TOKENS_TEST_UTF8"]
    header = (b"Bearer \xff\xfe" + b"A" * 20).decode("utf-8", "surrogateescape")  # as aiohttp hands it over
    assert not tokens.accepts(header)


def test_no_token_or_a_short_one_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("T", raising=False)
    with pytest.raises(TokenError, match="no bearer token: set the environment variable T"):
        Tokens("T", None)
    monkeypatch.setenv("T", "short")
    with pytest.raises(TokenError, match="shorter than 16 characters") as info:
        Tokens("T", None)
    assert "short" not in str(info.value).replace("shorter", "")
