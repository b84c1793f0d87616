"""Time and peak memory to reject hostile safetensors headers and JSON files (issue 15), as JSON.

Each case is written to a real file and opened in a fresh child process (so the peak RSS is that case's alone):
    python benchmarks/bench_hostile_headers.py [--out results.json]

Cases: the issue's 100 MB header of 1.7 M zero-size entries; as many entries as the cap allows (accepted); 15 MiB of
zero-size entries; 16 MiB of "[]" pairs; 100,000 nested "["; a 17 MiB and a 500,000-entry
model.safetensors.index.json.
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gpt_oss_desktop.kernels.cpu_build import cpu_model_name

# The child: imports first (torch alone is ~2 s and ~300 MB), then times one open. VmHWM (peak RSS of this
# process image, reset by exec) minus the RSS before the open is the memory the open itself needed.
CHILD = """
import json, re, sys, time
from pathlib import Path
from gpt_oss_desktop.engine.checkpoint.reader import load_checkpoint
from gpt_oss_desktop.engine.checkpoint.safetensors_io import SafetensorsFile
from gpt_oss_desktop.engine.errors import CheckpointError
def status(field):
    return int(re.search(field + r":\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024
kind, path = sys.argv[1], Path(sys.argv[2])
before = status("VmRSS")
start = time.perf_counter()
try:
    SafetensorsFile(path) if kind == "header" else load_checkpoint(path.parent)
    outcome = "accepted"
except CheckpointError as exc:
    outcome = "CheckpointError: " + str(exc).rsplit(": ", 1)[-1]
except BaseException as exc:
    outcome = type(exc).__name__ + ": " + str(exc)[:120]
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "extra_peak_mb": status("VmHWM") - before, "outcome": outcome}))
"""


def _safetensors(path: Path, header: bytes) -> None:
    path.write_bytes(struct.pack("<Q", len(header)) + header)


def _zero_entries(target_bytes: int) -> bytes:
    one = len(json.dumps({"t0000000": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}})) - 1
    count = target_bytes // one
    return json.dumps(
        {f"t{i:07d}": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]} for i in range(count)}
    ).encode()


CASES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "100MB_header_1.7M_zero_size_entries": ("header", lambda p: _safetensors(p, _zero_entries(100_000_000))),
    "65536_zero_size_entries_the_cap": ("header", lambda p: _safetensors(p, _zero_entries(65536 * 62))),
    "15MiB_header_zero_size_entries": ("header", lambda p: _safetensors(p, _zero_entries(15 * 1024 * 1024))),
    "16MiB_header_of_[]_pairs": ("header", lambda p: _safetensors(p, b"[" + b"[]," * (5 * 1024 * 1024) + b"[]]")),
    "100k_nested_[": ("header", lambda p: _safetensors(p, b"[" * 100_000)),
    "17MiB_index_json": ("index", lambda p: p.write_text(json.dumps({"weight_map": {}, "pad": "x" * (17 << 20)}))),
    "index_json_500k_entries": (
        "index",
        lambda p: p.write_text(json.dumps({"weight_map": {f"t{i}": "a.safetensors" for i in range(500_000)}})),
    ),
}


def run_case(kind: str, path: Path) -> dict[str, object]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-P", "-c", CHILD, kind, str(path)], capture_output=True, text=True)
    wall = time.perf_counter() - started
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        return {"outcome": f"child failed ({proc.returncode}): {proc.stderr.strip()[-300:]}"}
    child = json.loads(lines[-1])
    return {
        "reject_seconds": round(child["seconds"], 3),
        "extra_peak_rss_mb": round(child["extra_peak_mb"], 1),
        "child_wall_seconds": round(wall, 2),
        "outcome": child["outcome"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, object] = {"cpu": cpu_model_name(), "python": sys.version.split()[0]}
    from gpt_oss_desktop.engine.checkpoint import PRESETS

    with tempfile.TemporaryDirectory() as tmp:
        # a valid config, so that the index cases reach the index
        (Path(tmp) / "config.json").write_text(json.dumps(PRESETS["tiny"].to_hf_dict(mxfp4=True)))
        for name, (kind, write) in CASES.items():
            path = Path(tmp) / ("model.safetensors" if kind == "header" else "model.safetensors.index.json")
            write(path)
            results[name] = {"file_bytes": path.stat().st_size, **run_case(kind, path)}
            path.unlink()
    text = json.dumps(results, indent=2)
    sys.stdout.write(text + "\n")
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
