"""The command registry and the thin entry point: every command loads, parses and reports usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.cli import build_parser, chosen_command, main
from worker.commands import COMMANDS, load


@pytest.mark.parametrize(("argv", "command"), [
    (["sync", "--config", "x"], "sync"),
    (["--log-level", "DEBUG", "state", "prune"], "state"),
    (["--log-level=DEBUG", "--log-format", "json", "run"], "run"),
    (["--log-l", "run", "publish"], "publish"),  # an abbreviated global option takes the next word
    (["--help"], None),
    ([], None),
    (["nope"], None),
])
def test_chosen_command(argv: list[str], command: str | None) -> None:
    assert chosen_command(argv) == command


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_module_has_the_two_functions_and_its_own_help(
        name: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = load(name)
    assert callable(module.add_options) and callable(module.run)
    assert module.__doc__, f"{COMMANDS[name].module} needs a docstring saying what the command does"
    with pytest.raises(SystemExit) as exited:
        main([name, "--help"])
    assert exited.value.code == 0
    assert f"usage: segment-export {name}" in capsys.readouterr().out


def test_the_parser_of_one_command_holds_only_its_options() -> None:
    args = build_parser("sync").parse_args(["sync", "--config", "c.toml", "--export", "vip", "--snapshot", "s.jsonl",
                                            "--allow-mass-removal"])
    assert (args.command, args.allow_mass_removal, args.full, args.dry_run) == ("sync", True, False, False)


@pytest.mark.parametrize("argv", [[], ["nope"], ["sync", "--config", "c.toml"], ["state"], ["config"],
                                  ["sync", "--config", "c.toml", "--export", "v", "--snapshot", "s", "--bogus"]])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "usage: segment-export" in capsys.readouterr().err


def test_a_bad_config_exits_2_naming_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["state", "prune", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml" in capsys.readouterr().err


CONFIG = """
[worker]
state_url = "file://{state}"

[connections.sim]
hostname = "sim.api-us1.com"
api_key_env = "{env}"
data_privacy_consent = true

[exports.vip]
segment = "vip-customers"
connection = "sim"
list_id = 3
mapping = {{ email = "EmailAddress" }}
"""


def test_config_check_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.format(state=tmp_path / "state", env="SEGMENT_EXPORT_CLI_TEST_KEY"))
    monkeypatch.delenv("SEGMENT_EXPORT_CLI_TEST_KEY", raising=False)
    assert main(["config", "check", "--config", str(config)]) == 2
    assert "SEGMENT_EXPORT_CLI_TEST_KEY" in capsys.readouterr().err  # names the variable to set
    monkeypatch.setenv("SEGMENT_EXPORT_CLI_TEST_KEY", "k")
    assert main(["config", "check", "--config", str(config)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] is True and summary["exports"] == {"vip": {"segment": "vip-customers", "connection": "sim",
                                                                    "list_id": 3}}


def test_config_check_says_how_snapshot_prefixes_are_taken(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19: a prefix without a trailing slash is a folder; config check says so (and still passes)."""
    monkeypatch.setenv("SEGMENT_EXPORT_CLI_TEST_KEY", "k")
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.replace('[worker]\n', '[worker]\nsnapshot_prefixes = ["s3://cdp-exports", '
                                                   '"file:///data/segments/"]\n').format(
        state=tmp_path / "state", env="SEGMENT_EXPORT_CLI_TEST_KEY"))
    assert main(["config", "check", "--config", str(config)]) == 0
    out = capsys.readouterr()
    note = ("snapshot_prefixes: 's3://cdp-exports' has no trailing slash; it is taken as the folder "
            "s3://cdp-exports/ (locations inside it, not s3://cdp-exports-other/)")
    assert json.loads(out.out)["notes"] == [note]
    assert f"segment-export: note: {note}" in out.err


@pytest.mark.parametrize(("prefix", "says"), [("ftp://host/x/", "unsupported scheme 'ftp'"),
                                              ("s3://b/../x/", "climbs above its root"),
                                              ("file://remote/x/", "names a remote host")])
def test_a_prefix_that_names_no_place_is_a_config_error(prefix: str, says: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.replace('[worker]\n', f'[worker]\nsnapshot_prefixes = ["s3://ok/", "{prefix}"]\n')
                      .format(state=tmp_path / "state", env="SEGMENT_EXPORT_CLI_TEST_KEY"))
    assert main(["config", "check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "worker.snapshot_prefixes[1]: location" in err and says in err


@pytest.mark.parametrize("argv", [["state", "prune", "--config", "C"],
                                  ["sync", "--config", "C", "--export", "vip", "--snapshot", "s.jsonl"],
                                  ["request", "--config", "C", "--export", "vip", "--dry-run", "--snapshot", "s"]],
                         ids=lambda argv: argv[0])
def test_an_unusable_state_url_is_a_config_error(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMENT_EXPORT_CLI_TEST_KEY", "k")
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.replace('"file://{state}"', '"s3://Not_A_Bucket/x"').format(
        env="SEGMENT_EXPORT_CLI_TEST_KEY"))
    assert main([str(config) if a == "C" else a for a in argv]) == 2
    err = capsys.readouterr().err
    assert "state_url" in err and "Not_A_Bucket" in err
