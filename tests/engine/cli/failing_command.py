"""A CLI sub-command that fails with an exception that is not an EngineError.

A stand-in: every known way a real command raised a non-EngineError (issue 15) is fixed, and a test of the
catch-all needs one that still does. It is wired in through ``COMMANDS`` like the real commands.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    subparsers.add_parser("fail", help="raise an unexpected error (tests only)")


def run(args: argparse.Namespace) -> int:
    raise ValueError("something the engine did not expect\non two lines")
