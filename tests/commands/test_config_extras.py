"""``config check`` names the optional extras a config needs where it can tell (issue 16), and says when one
is not installed, with the install command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from worker.cli import main

CONFIG = """
[worker]
state_url = "{state}"
{prefixes}

[connections.ac]
hostname = "acct.api-us1.com"
api_key_env = "SEGMENT_EXPORT_EXTRAS_KEY"
data_privacy_consent = true

[exports.vip]
segment = "vip"
connection = "ac"
list_id = 3
mapping = {{ email = "EmailAddress" }}
"""


def write(tmp_path: Path, state: str, prefixes: str = "") -> Path:
    path = tmp_path / "export.toml"
    path.write_text(CONFIG.format(state=state, prefixes=prefixes))
    return path


@pytest.mark.parametrize(("state", "prefixes", "extras"), [
    ("file://./state", "", []),
    ("az://segment-export/state", "", ["azure"]),
    ("abfss://segment-export@acct1.dfs.core.windows.net/state", "", ["azure"]),
    ("s3://bucket/state", 'snapshot_prefixes = ["az://segments/"]', ["azure"]),
])
def test_config_check_names_the_extras(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch, state: str, prefixes: str,
                                       extras: list[str]) -> None:
    monkeypatch.setenv("SEGMENT_EXPORT_EXTRAS_KEY", "k" * 40)
    assert main(["config", "check", "--config", str(write(tmp_path, state, prefixes))]) == 0
    assert json.loads(capsys.readouterr().out)["extras"] == extras


BLOCK_AZURE = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "azure" or name.startswith("azure."):
            raise ImportError(name)
sys.meta_path.insert(0, Block())
from worker.cli import main
sys.exit(main(["config", "check", "--config", sys.argv[1]]))
"""


def test_a_missing_extra_is_a_note_with_the_install_command(tmp_path: Path) -> None:
    config = write(tmp_path, "az://segment-export/state")
    done = subprocess.run([sys.executable, "-c", BLOCK_AZURE, str(config)], capture_output=True, text=True,
                          env={"SEGMENT_EXPORT_EXTRAS_KEY": "k" * 40, "PATH": "/usr/bin:/bin"},
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert ("note: state_url is on Azure Blob Storage: it needs the extra segment-export[azure], which is not "
            "installed (pip install 'segment-export[azure]')") in done.stderr
