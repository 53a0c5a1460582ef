"""What every command shares: exit codes, JSON on stdout, errors on stderr, the ``--config`` option.

Results go to stdout as JSON; logs and progress go to stderr, so ``segment-export sync ... | jq`` works.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from worker.settings import Config
    from worker.state import StateStore

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2  # bad usage or bad config: the message names the key and the fix
EXIT_PARTIAL = 3


def print_json(obj: Any) -> None:
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = EXIT_USAGE) -> int:
    """Write ``segment-export: error: <message>`` to stderr; returns ``code`` for the caller to return."""
    sys.stderr.write(f"segment-export: error: {message}\n")
    return code


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="the TOML config file")


def load(args: argparse.Namespace) -> Config:
    """The config ``--config`` names; a ConfigError propagates (the entry point turns it into exit 2)."""
    from worker.settings import load_config

    return load_config(args.config)


def check_keys(config: Config, exports: list[str] | None = None) -> None:
    """Read the API key of every connection these exports use (default: all exports).

    Why before any work: a missing key is a config error (exit 2 with the key's name), not a failed run.
    """
    names = exports if exports is not None else list(config.exports)
    for name in names:
        config.connections[config.export(name).connection].api_key()


def open_state(config: Config) -> StateStore:
    """The config's state store; a ``state_url`` it cannot use is a config error (exit 2)."""
    from worker.settings import ConfigError
    from worker.state import StateError, open_store

    try:
        return open_store(config.worker.state_url)
    except StateError as exc:
        raise ConfigError(f"[worker] {exc}") from None
