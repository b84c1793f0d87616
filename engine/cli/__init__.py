"""Command-line entry point: ``python -m gpt_oss_desktop.engine <command> ...``.

Each sub-command lives in its own module exposing ``add_parser(subparsers)`` and ``run(args) -> int``.
Errors a user can fix (bad paths, broken checkpoints, bad arguments) become a one-line message and exit code 2.
Any other exception is a bug: one line naming it and a log file with its traceback (engine.cli.error_log), exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from gpt_oss_desktop.engine.cli.error_log import write_error_log
from gpt_oss_desktop.engine.errors import EngineError
from gpt_oss_desktop.engine.logging_setup import configure_terminal

logger = logging.getLogger(__name__)

# command name -> module under engine.cli
COMMANDS: dict[str, str] = {
    "chat": "gpt_oss_desktop.engine.cli.chat",
    "tokens": "gpt_oss_desktop.engine.cli.tokens",
    "info": "gpt_oss_desktop.engine.cli.info",
    "make-test-model": "gpt_oss_desktop.engine.cli.make_test_model",
    "bench": "gpt_oss_desktop.engine.cli.bench",
    "bench-batch": "gpt_oss_desktop.engine.cli.bench_batch",
    "prepare-kernels": "gpt_oss_desktop.engine.cli.prepare_kernels",
    "serve": "gpt_oss_desktop.engine.cli.serve",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line, non-zero exit: argparse's default prints the whole usage block first.
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m gpt_oss_desktop.engine", description="gpt-oss inference engine")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output to stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module_name in COMMANDS.values():
        importlib.import_module(module_name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    root = logging.getLogger()
    level = root.level
    # One line per record on the terminal, WARNING and up unless -v; a traceback only in the error log below.
    terminal = configure_terminal(args.verbose)
    try:
        return _run(args)
    finally:  # main() is also called in-process (tests, tools): leave logging as it was
        root.removeHandler(terminal)
        root.setLevel(level)


def _run(args: argparse.Namespace) -> int:
    module = importlib.import_module(COMMANDS[args.command])
    try:
        return int(module.run(args))
    except EngineError as exc:
        sys.stderr.write(f"error: {_one_line(str(exc))}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as exc:
        logger.debug("unexpected error in %s", args.command, exc_info=True)
        sys.stderr.write(
            f"error: unexpected {type(exc).__name__}: {_one_line(str(exc), 300)} ({_logged(exc, args.command)})\n"
        )
        return 1


def _logged(exc: Exception, command: str) -> str:
    try:
        return f"details in {write_error_log(exc, command)}"
    except OSError as log_error:
        return f"no log written: {log_error}"


def _one_line(text: str, limit: int | None = None) -> str:
    flat = " ".join(text.splitlines())
    return flat if limit is None or len(flat) <= limit else flat[: limit - 1] + "…"
