"""A checkpoint load in a child process whose address space is capped (RLIMIT_AS), for out-of-memory tests: this
machine's memory is not at stake and the cap applies to nothing else. Linux only (RLIMIT_AS, /proc/self/status)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from gpt_oss_desktop.engine.checkpoint import PRESETS, random_weights, write_checkpoint

LINUX_ONLY = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc/self/status are Linux's"
)

_SCRIPT = """
import json, resource, sys
from pathlib import Path
{preload}
folder, headroom = Path(sys.argv[1]), float(sys.argv[2])
size = sum(p.stat().st_size for p in folder.iterdir())
with open("/proc/self/status") as status:
    in_use = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))
# The address space this process has now, plus `headroom` times the checkpoint's size.
resource.setrlimit(resource.RLIMIT_AS, (in_use + int(headroom * size), resource.RLIM_INFINITY))
{attempt}
"""


def write_200_mb_checkpoint(folder: Path) -> Path:
    """The "small" preset: its 201,088-token embedding makes ~200 MB of files, loaded as ~2x that in float32."""
    write_checkpoint(folder, PRESETS["small"], random_weights(PRESETS["small"], seed=1), "hf")
    return folder


def load_with_capped_memory(folder: Path, headroom: float, *, preload: str, attempt: str) -> Any:
    """Run ``attempt`` (code that loads the checkpoint ``folder`` and prints a JSON value) in a child Python whose
    address space is capped at what it holds after ``preload`` plus ``headroom`` times the checkpoint's size; the
    JSON value it printed last.

    ``preload`` imports everything the load needs: an import under the cap fails to map its libraries."""
    script = _SCRIPT.format(preload=textwrap.dedent(preload), attempt=textwrap.dedent(attempt))
    result = subprocess.run(
        [sys.executable, "-P", "-c", script, str(folder), str(headroom)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
