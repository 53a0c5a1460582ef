"""Trigger globs on decoded, normalised locations."""

from __future__ import annotations

import pytest

from worker.locations import LocationError, compile_glob, locate


@pytest.mark.parametrize(("pattern", "uri", "hit"), [
    ("s3://cdp-exports/vip/*/_SUCCESS", "s3://cdp-exports/vip/2026-11-28/_SUCCESS", True),
    ("s3://cdp-exports/vip/*/_SUCCESS", "s3://cdp-exports/vip/a/b/_SUCCESS", False),  # * stays in one folder
    ("s3://cdp-exports/vip/**/_SUCCESS", "s3://cdp-exports/vip/a/b/_SUCCESS", True),
    ("s3://cdp-exports/vip/**/_SUCCESS", "s3://cdp-exports/vip/_SUCCESS", True),  # ** is zero or more folders
    ("s3://cdp-exports/vip/**/_SUCCESS", "s3://cdp-exports/vip_SUCCESS", False),
    ("s3://cdp-exports/**/_SUCCESS", "s3://cdp-exports/_SUCCESS", True),
    ("s3://cdp-exports/vip/**", "s3://cdp-exports/vip/a/b", True),
    ("s3://cdp-exports/vip/[a-c]/_SUCCESS", "s3://cdp-exports/vip/b/_SUCCESS", True),
    # Azure: az:// is a container of the worker's account, abfss:// names the account
    ("az://insights/CustomerInsights_*/vip/model.json", "az://insights/CustomerInsights_1/vip/model.json", True),
    ("az://insights/CustomerInsights_*/vip/model.json", "az://insightsx/CustomerInsights_1/vip/model.json", False),
    ("az://insights/*/model.json", "abfss://insights@acct.dfs.core.windows.net/x/model.json", False),
    ("abfss://insights@acct.dfs.core.windows.net/*/model.json",
     "abfss://insights@acct.dfs.core.windows.net/x/model.json", True),
    ("abfss://insights@acct.dfs.core.windows.net/*/model.json",
     "abfss://insights@other.dfs.core.windows.net/x/model.json", False),
    ("s3://cdp-exports/vip/*/_SUCCESS", "s3://cdp-exports-evil/vip/x/_SUCCESS", False),
    ("s3://cdp-exports/vip/*/_SUCCESS", "s3://cdp-exports/vip/x/_SUCCESS.tmp", False),
    # decoded: a pattern is written as the object is named; the URI is percent-encoded once
    ("s3://cdp-exports/vip/dt=*/my file/_SUCCESS", "s3://cdp-exports/vip/dt%3D2026/my%20file/_SUCCESS", True),
    # normalised before matching: '..' cannot smuggle an object under a trigger's folder
    ("s3://cdp-exports/vip/*/_SUCCESS", "s3://cdp-exports/other/../vip/x/_SUCCESS", True),
    ("s3://cdp-exports/vip/**", "s3://cdp-exports/vip/%2e%2e/secret/_SUCCESS", False),
    ("s3://cdp-exports/vip/?/_SUCCESS", "s3://cdp-exports/vip/a/_SUCCESS", True),
    ("s3://cdp-exports/vip/[ab]/_SUCCESS", "s3://cdp-exports/vip/b/_SUCCESS", True),
    ("s3://cdp-exports/vip/[!ab]/_SUCCESS", "s3://cdp-exports/vip/b/_SUCCESS", False),
    ("s3://cdp-exports/vip/[!ab]/_SUCCESS", "s3://cdp-exports/vip/c/_SUCCESS", True),
    ("s3://cdp-exports/vip.+(x)/*", "s3://cdp-exports/vip.+(x)/m", True),  # regex characters are literal
    ("s3://cdp-exports/vip.+(x)/*", "s3://cdp-exports/vipp(x)/m", False),
])
def test_matches(pattern: str, uri: str, hit: bool) -> None:
    assert compile_glob(pattern).matches(locate(uri)) is hit


@pytest.mark.parametrize(("pattern", "words"), [
    ("cdp-exports/vip/*/_SUCCESS", "must start with s3://, az:// or abfss://"),
    ("https://x/y", "must start with s3://"),
    ("s3://cdp-exports/vip/[z-a]/_SUCCESS", r"not a valid glob \(bad character range z-a"),
    ("abfss://insights@acct.example.com/x/model.json", "not an S3 bucket name or an Azure container"),
    ("s3://cdp-*/vip/_SUCCESS", "one bucket"),
    ("s3://cdp-exports", "one bucket"),
    ("s3://cdp-exports/vip/[ab/_SUCCESS", "never closed"),
    ("s3://AKIA:s3cr3t@cdp-exports/vip/_SUCCESS", "not an S3 bucket name"),
])
def test_bad_patterns_say_why(pattern: str, words: str) -> None:
    with pytest.raises(LocationError, match=words) as info:
        compile_glob(pattern)
    assert "s3cr3t" not in str(info.value)
