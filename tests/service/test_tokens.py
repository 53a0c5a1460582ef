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
    f.unlink()  # a secret being re-mounted: the last good tokens stay
    assert tokens.accepts(f"Bearer {B}")


def test_no_token_or_a_short_one_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("T", raising=False)
    with pytest.raises(TokenError, match="no bearer token: set the environment variable T"):
        Tokens("T", None)
    monkeypatch.setenv("T", "short")
    with pytest.raises(TokenError, match="shorter than 16 characters") as info:
        Tokens("T", None)
    assert "short" not in str(info.value).replace("shorter", "")
