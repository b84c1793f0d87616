"""``gpt-oss-desktop-engine prepare-kernels [--all-levels]``: build (or load) the fused CPU kernels now.

Meant for install scripts: the build (about ten seconds on a cold cache) then happens once at install instead of
before the first answer. Prints one line per level and exits 0 when the kernels are ready (or switched off with
``GPTOSS_CPU_FUSED=0``), 1 when they could not be built (the app then uses the slower torch path).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gpt_oss_desktop.kernels import cpu_build


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "prepare-kernels",
        help="build the fused CPU kernels for this CPU (first run only)",
        description=(
            "Build or load the fused CPU kernels for the best instruction-set level this CPU has "
            f"({cpu_build.ISA_ENV} forces one; {cpu_build.FUSED_ENV}=0 switches them off) and print the result."
        ),
    )
    parser.add_argument(
        "--all-levels", action="store_true", help="build every level this CPU can run (for tests and measurements)"
    )


def run(args: argparse.Namespace) -> int:
    if args.all_levels:
        statuses = [cpu_build.load_level(level) for level in cpu_build.supported_levels()]
    else:
        statuses = [cpu_build.prepare()]
    for status in statuses:
        sys.stdout.write(status.summary() + "\n")
    return 0 if all(s.state is not cpu_build.KernelState.FAILED for s in statuses) else 1
