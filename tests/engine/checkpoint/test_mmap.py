"""Loaded tensors are views over a file mapping: no anonymous copy at load, none when read."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import pytest
import torch

from gpt_oss_desktop.engine.checkpoint import load_checkpoint, write_checkpoint
from gpt_oss_desktop.engine.config import ModelConfig

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")

# ~200 MB, almost all of it the two [V, H] bf16 matrices
WIDE = ModelConfig(
    num_hidden_layers=1,
    num_experts=2,
    experts_per_token=1,
    vocab_size=100_000,
    hidden_size=512,
    intermediate_size=32,
    head_dim=16,
    num_attention_heads=2,
    num_key_value_heads=1,
    sliding_window=8,
)


def _mapped_ranges(path: Path) -> list[tuple[int, int]]:
    ranges = []
    with open("/proc/self/maps", encoding="utf-8") as fh:
        for line in fh:
            if line.rstrip().endswith(str(path)):
                lo, hi = line.split()[0].split("-")
                ranges.append((int(lo, 16), int(hi, 16)))
    return ranges


def _rss_anon() -> int:
    with open("/proc/self/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon")


@pytest.fixture(scope="module")
def wide_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wide")
    # constant tensors: writing is quick and the point here is memory, not values
    weights: dict[str, torch.Tensor] = {}
    from gpt_oss_desktop.engine.checkpoint import canonical_specs

    for name, spec in canonical_specs(WIDE, mxfp4=True).items():
        dtype = torch.uint8 if torch.uint8 in spec.dtypes else torch.bfloat16
        weights[name] = torch.full(spec.shape, 1, dtype=dtype)
    write_checkpoint(out, WIDE, weights, "original")
    return out


def test_tensors_live_inside_the_file_mapping(wide_checkpoint: Path) -> None:
    ck = load_checkpoint(wide_checkpoint)
    file = ck.files[0]
    ranges = _mapped_ranges(file)
    assert ranges, "the safetensors file is not mapped"
    for name, t in ck.tensors.items():
        lo = t.data_ptr()
        hi = lo + t.numel() * t.element_size()
        assert any(a <= lo and hi <= b for a, b in ranges), f"{name} is not a view of {file}"


def test_reading_everything_allocates_no_anonymous_memory(wide_checkpoint: Path) -> None:
    gc.collect()
    before = _rss_anon()
    ck = load_checkpoint(wide_checkpoint)
    assert ck.nbytes > 200_000_000
    total = 0
    for t in ck.tensors.values():
        # reinterpret as bytes so the reduction needs no float temporaries of the tensor's size
        total += int(t.reshape(-1).view(torch.uint8).max())
    grown = _rss_anon() - before
    assert total > 0
    assert grown < 0.1 * ck.nbytes, f"anonymous RSS grew {grown / 1e6:.1f} MB for {ck.nbytes / 1e6:.1f} MB of tensors"


def test_writing_to_a_tensor_never_reaches_the_file(wide_checkpoint: Path) -> None:
    ck = load_checkpoint(wide_checkpoint)
    t = ck.tensors["norm.scale"]
    t[0] = 5.0  # private (copy-on-write) mapping: allowed, changes only this process's page
    assert float(load_checkpoint(wide_checkpoint).tensors["norm.scale"][0]) == 1.0
