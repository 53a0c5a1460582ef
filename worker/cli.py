"""``segment-export``: the command line (also ``python -m worker``); a thin entry point.

Builds the parser from ``worker.commands.COMMANDS`` (names and one-line summaries), imports only the
chosen command's module to add its options and run it, and turns a config error into exit 2. Nothing
heavy is imported to print ``--help`` (a test holds it to that): each command imports its library when
it runs.

Exit codes: 0 success; 3 finished but some contacts failed; 1 the run failed; 2 bad usage or config.
Results go to stdout as JSON; logs and progress go to stderr, so ``sync ... | jq`` works.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from worker.commands import COMMANDS, common, load

_GLOBAL_VALUE_OPTIONS = ("--log-level", "--log-format")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the options of ``command`` only (the others are listed by their summaries)."""
    parser = argparse.ArgumentParser(prog="segment-export",
                                     description="Keep ActiveCampaign lists in step with customer segments.")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    parser.add_argument("--log-format", choices=["json", "text"],
                        help="log lines on stderr: json (default for run) or text (default otherwise)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, info in COMMANDS.items():
        p = sub.add_parser(name, help=info.summary, description=info.summary)
        if name == command:
            load(name).add_options(p)
    return parser


def chosen_command(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (the first word that is not a global option or its value)."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token == "--":
            continue
        elif token.startswith("-"):
            # "--log-level X" (or an unambiguous abbreviation, as argparse allows) takes the next word
            skip = len(token) > 2 and "=" not in token and any(o.startswith(token) for o in _GLOBAL_VALUE_OPTIONS)
        else:
            return token if token in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = chosen_command(argv)
    args = build_parser(command).parse_args(argv)
    from worker.privacy import logs
    from worker.settings import ConfigError

    # JSON lines for the worker (``run``), plain text for the other commands, unless --log-format says
    # otherwise; emails masked either way.
    logs.setup(args.log_level, args.log_format or ("json" if args.command == "run" else "text"), sys.stderr)
    try:
        return int(load(args.command).run(args))
    except ConfigError as exc:
        return common.fail(str(exc))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
