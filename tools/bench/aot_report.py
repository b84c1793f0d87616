"""The ahead-of-time compile report that ``bench --kernels`` prints next to its byte counts.

:mod:`gpt_oss_desktop.kernels.triton_aot` compiles each Triton kernel for real GPU targets without a GPU and reads
registers, spills and shared memory from ``ptxas``. It needs Triton loaded as the compiler, while a benchmark run
may have it loaded as the interpreter (``TRITON_INTERPRET=1`` on CPU), so it runs in a child process with the
interpreter switched off there. The compile takes seconds (about 7 s for every kernel and target on 2 cores).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from typing import Any

logger = logging.getLogger(__name__)

AOT_TARGETS = ("sm_80", "sm_89", "sm_90")
_TIMEOUT_S = 900

# The columns kept per row: enough to read resource use; the full report (constexprs, case) stays in triton_aot.
_ROW_KEYS = ("kernel", "target", "registers", "spill_stores_bytes", "spill_loads_bytes", "shared_bytes",
             "shared_limit_bytes", "num_warps")  # fmt: skip


def _summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (kernel, target): the most registers, spills and shared memory over every captured launch."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["kernel"], row["target"])
        kept = {name: row[name] for name in _ROW_KEYS}
        if key not in merged:
            merged[key] = kept | {"launches": 1}
            continue
        into = merged[key]
        into["launches"] += 1
        for name in ("registers", "spill_stores_bytes", "spill_loads_bytes", "shared_bytes", "num_warps"):
            into[name] = max(into[name], kept[name])
    return list(merged.values())


def aot_compile_report(
    targets: tuple[str, ...] = AOT_TARGETS, kernels: tuple[str, ...] | None = None
) -> dict[str, Any] | str:
    """Compile the kernels for ``targets`` in a child process; the summary, or a one-line reason it could not run."""
    if not targets:
        return "skipped: no targets asked for"
    env = {name: value for name, value in os.environ.items() if name != "TRITON_INTERPRET"}
    env["GPTOSS_KERNELS"] = "triton"
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton's default; set only to silence its warning
    command = [sys.executable, "-P", "-m", "gpt_oss_desktop.kernels.triton_aot", "--targets", *targets]
    if kernels:
        command += ["--kernels", *kernels]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=_TIMEOUT_S, check=False)
    if done.returncode not in (0, 1):  # 1 = compiled, but something spills or overflows shared memory
        last = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        logger.warning("the AOT compile failed: %s", done.stderr[-2000:])
        return f"unavailable: {last[0]}"
    parsed = json.loads(done.stdout)
    rows = _summarise(parsed["compiles"])
    return {
        "triton": parsed["triton"],
        "note": "compiled ahead of time with Triton's ptxas, no GPU involved; per kernel and target the most over "
        "the 20b and 120b launches",
        "targets": list(targets),
        "spilling": sum(1 for row in rows if row["spill_stores_bytes"] or row["spill_loads_bytes"]),
        "shared_over_limit": sum(1 for row in rows if row["shared_bytes"] > row["shared_limit_bytes"]),
        "compiles": rows,
    }
