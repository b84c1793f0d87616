"""Property-based fuzzing of the two untrusted inputs of a checkpoint folder: ``config.json`` and safetensors headers.

Every value is written to a real file and read through the public loader. The property: loading either succeeds or
raises :class:`CheckpointError` (``ConfigError`` is one), and no single example takes more than 2 s (the deadline).
Any other exception type (RecursionError, OverflowError, AttributeError, ZeroDivisionError, ...) is a bug.

Runs are derandomized (a fixed sequence of examples) so that CI is stable; the strategies mix in the values known to
have broken the loader (non-finite numbers, huge numbers, strings where objects belong, deep nesting), so that a
regression of any of them is found within the example budget.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpt_oss_desktop.engine.checkpoint import load_checkpoint
from gpt_oss_desktop.engine.checkpoint.safetensors_io import SafetensorsFile
from gpt_oss_desktop.engine.errors import CheckpointError

from .conftest import TINY

FUZZ = settings(
    max_examples=200,
    deadline=2000,  # ms: one example (write + load) taking longer than this fails the test
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass(frozen=True)
class Raw:
    """A JSON fragment written verbatim (``1e400``, ``NaN``, 5,000 nested ``[``: what json.dumps cannot produce)."""

    text: str


RAW_FRAGMENTS = (
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    "-Infinity",
    "1" * 5000,  # more digits than Python's int() accepts by default
    "[" * 5000 + "]" * 5000,
    "[" * 100_000,  # unterminated and deep: json.loads alone raises RecursionError
    "{" + '"a":{' * 3000 + "}" * 3001,
    '"' + "\\u00e9" * 10 + '"',
)


def dump(value: Any) -> str:
    """JSON text of ``value``, with :class:`Raw` fragments spliced in as they are."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)  # floats: nan/inf become NaN/Infinity, as a careless writer would produce


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2, 3, 4, 7, 16, 32, 64, 2**31, 2**63, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 0.5, 4.7, 1e-300, 1e308, float("nan"), float("inf"), float("-inf")]),
    st.text(max_size=8),
    st.sampled_from(["yarn", "silu", "sliding_attention", "full_attention", "gpt_oss", "GptOssForCausalLM", ""]),
    st.sampled_from(RAW_FRAGMENTS).map(Raw),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)


# ------------------------------------------------------------------------------------------------ config.json
CONFIG_KEYS = sorted(
    set(TINY.to_original_dict())
    | set(TINY.to_hf_dict(mxfp4=True))
    | {"num_experts", "rope_scaling_factor", "rope_type", "factor", "original_max_position_embeddings"}
)
ROPE_KEYS = ("rope_type", "type", "factor", "beta_fast", "beta_slow", "truncate", "original_max_position_embeddings")


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    """A real tiny config (either spelling) with a few keys replaced, removed or added."""
    hf = draw(st.booleans())
    base: dict[str, Any] = TINY.to_hf_dict(mxfp4=True) if hf else TINY.to_original_dict()
    for key in draw(st.lists(st.sampled_from(CONFIG_KEYS), max_size=4, unique=True)):
        if draw(st.integers(0, 4)) == 0:
            base.pop(key, None)
        else:
            base[key] = draw(json_values)
    if hf and draw(st.booleans()):
        section = draw(st.sampled_from(["rope_scaling", "rope_parameters"]))
        rope = dict(base.get(section) or {}) if isinstance(base.get(section), dict) else {}
        for key in draw(st.lists(st.sampled_from(ROPE_KEYS), min_size=1, max_size=3, unique=True)):
            rope[key] = draw(json_values)
        base[section] = rope if draw(st.integers(0, 3)) else draw(json_values)
    return base


@pytest.fixture(scope="module")
def checkpoint_folder(tmp_path_factory: pytest.TempPathFactory, written: dict[str, Path]) -> Iterator[Path]:
    """A copy of the tiny HF checkpoint whose config.json each example overwrites."""
    folder = tmp_path_factory.mktemp("fuzz") / "ck"
    shutil.copytree(written["hf"], folder)
    yield folder


@FUZZ
@given(config=configs())
def test_config_json_values_raise_only_checkpoint_errors(checkpoint_folder: Path, config: dict[str, Any]) -> None:
    (checkpoint_folder / "config.json").write_text(dump(config), encoding="utf-8")
    with contextlib.suppress(CheckpointError):
        load_checkpoint(checkpoint_folder)


# ------------------------------------------------------------------------------------------------ safetensors
DTYPES = ("BF16", "F32", "U8", "I64", "BOOL", "F8_E4M3", "F4", "bf16", "", "X" * 40)


@st.composite
def entries(draw: st.DrawFn) -> Any:
    """One header record: usually well-formed enough to reach the offset and overlap checks."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    shape = draw(st.lists(st.integers(0, 6), max_size=4))
    begin = draw(st.integers(0, 64))
    length = draw(st.integers(0, 64))
    record: dict[str, Any] = {
        "dtype": draw(st.sampled_from(DTYPES)),
        "shape": shape,
        "data_offsets": [begin, begin + length],
    }
    for key in draw(st.lists(st.sampled_from(["dtype", "shape", "data_offsets", "extra"]), max_size=2, unique=True)):
        record[key] = draw(json_values)
    return record


@st.composite
def safetensors_files(draw: st.DrawFn) -> bytes:
    """A whole file: length prefix, header JSON, data bytes; the prefix is sometimes wrong."""
    header: Any = draw(st.dictionaries(st.text(min_size=1, max_size=12), entries(), max_size=6))
    if draw(st.integers(0, 5)) == 0:
        header["__metadata__"] = draw(json_values)
    if draw(st.integers(0, 7)) == 0:
        header = draw(json_values)  # not an object at all
    text = dump(header).encode("utf-8", errors="surrogatepass")
    data = bytes(draw(st.integers(0, 256)))
    length = len(text)
    mode = draw(st.integers(0, 9))
    if mode == 0:
        length = draw(st.integers(0, 2**64 - 1))
    elif mode == 1:
        text = text[: draw(st.integers(0, len(text)))]
    return struct.pack("<Q", length) + text + data


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz-st")
    (folder / "config.json").write_text(json.dumps(TINY.to_hf_dict(mxfp4=True)), encoding="utf-8")
    return folder


@FUZZ
@given(blob=safetensors_files())
def test_safetensors_headers_raise_only_checkpoint_errors(fuzz_dir: Path, blob: bytes) -> None:
    path = fuzz_dir / "model.safetensors"
    path.write_bytes(blob)
    try:
        f = SafetensorsFile(path)
        for name in f.entries:
            f.tensor(name)
    except CheckpointError:
        pass
    with contextlib.suppress(CheckpointError):
        load_checkpoint(fuzz_dir)


# ------------------------------------------------------------------------------------------------ shard index
@st.composite
def indexes(draw: st.DrawFn, original: dict[str, Any]) -> Any:
    """A real two-shard index with some entries re-pointed, removed or replaced by arbitrary JSON."""
    index: Any = json.loads(json.dumps(original))  # a deep copy
    weight_map = index["weight_map"]
    for name in draw(st.lists(st.sampled_from(sorted(weight_map)), max_size=3, unique=True)):
        choice = draw(st.integers(0, 4))
        if choice == 0:
            del weight_map[name]
        elif choice <= 2:
            weight_map[name] = draw(st.sampled_from(["", ".", "..", "/etc/passwd", "a\x00b", "x.safetensors"]))
        else:
            weight_map[name] = draw(json_values)
    if draw(st.integers(0, 5)) == 0:
        index["weight_map"] = draw(json_values)
    if draw(st.integers(0, 7)) == 0:
        index = draw(json_values)
    return index


@pytest.fixture(scope="module")
def sharded_folder(tmp_path_factory: pytest.TempPathFactory, written: dict[str, Path]) -> tuple[Path, dict[str, Any]]:
    """A copy of the tiny two-shard HF checkpoint, and its original index."""
    folder = tmp_path_factory.mktemp("fuzz-index") / "ck"
    shutil.copytree(written["hf-sharded"], folder)
    return folder, json.loads((folder / "model.safetensors.index.json").read_text())


@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_shard_index_raises_only_checkpoint_errors(
    sharded_folder: tuple[Path, dict[str, Any]], data: st.DataObject
) -> None:
    folder, original = sharded_folder
    (folder / "model.safetensors.index.json").write_text(dump(data.draw(indexes(original))), encoding="utf-8")
    with contextlib.suppress(CheckpointError):
        load_checkpoint(folder)
