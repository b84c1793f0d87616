"""Hostile or unlucky files in a checkpoint folder (issue 15): each is a CheckpointError naming the path, never a
hang, a traceback of another type, or a silent load."""

from __future__ import annotations

import json
import os
import shutil
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from gpt_oss_desktop.engine.checkpoint import load_checkpoint
from gpt_oss_desktop.engine.checkpoint.safetensors_io import SafetensorsFile
from gpt_oss_desktop.engine.errors import CheckpointError

needs_posix = pytest.mark.skipif(os.name != "posix", reason="FIFOs, symlink loops and chmod are POSIX")


def _write_raw(path: Path, header: bytes, data: bytes = b"") -> Path:
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(
    ("header", "message"),
    [
        # RecursionError before: json.loads recursed once per "["
        (b"[" * 100_000, "brackets do not pair up"),
        (b"[" * 17 + b"]" * 17, "nested more than 16 levels deep"),
        (b'{"a": [1, {"b": 2}', "brackets do not pair up"),  # cut short
        (b"]" * 5 + b"[" * 5, "brackets do not pair up"),  # as many of each, in the wrong order
    ],
)
def test_deep_or_unbalanced_header_is_a_checkpoint_error(tmp_path: Path, header: bytes, message: str) -> None:
    path = _write_raw(tmp_path / "model.safetensors", header)
    with pytest.raises(CheckpointError, match=message) as info:
        SafetensorsFile(path)
    assert info.value.path == path


def test_a_config_cut_short_says_so(tmp_path: Path, written: dict[str, Path]) -> None:
    ck = _copy(written["hf-sharded"], tmp_path / "ck")
    config = ck / "config.json"
    text = config.read_text()
    config.write_text(text[: text.index(",") + 1])  # cut after its first key, as an interrupted write leaves it
    with pytest.raises(CheckpointError, match="cut short") as info:
        load_checkpoint(ck)
    assert info.value.path == config


@pytest.mark.parametrize(("count", "message"), [(65_537, "65,537 tensors"), (100_000, "values")])
def test_header_entries_are_capped(tmp_path: Path, count: int, message: str) -> None:
    # Zero-size entries are individually valid; before, any number of them was parsed (1.7 M took 27 s and 1.3 GB).
    entries = {f"t{i}": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]} for i in range(count)}
    path = _write_raw(tmp_path / "model.safetensors", json.dumps(entries).encode())
    with pytest.raises(CheckpointError, match=message) as info:
        SafetensorsFile(path)
    assert info.value.path == path


def test_index_json_size_is_capped(tmp_path: Path, written: dict[str, Path]) -> None:
    ck = _copy(written["hf-sharded"], tmp_path / "ck")
    index_path = ck / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    index["metadata"]["padding"] = "x" * (17 * 1024 * 1024)  # valid otherwise: this loaded before
    index_path.write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="bytes") as info:
        load_checkpoint(ck)
    assert info.value.path == index_path


@pytest.mark.parametrize("shard", ["a\x00b.safetensors", "..", ""])
def test_odd_shard_names_in_the_index_are_checkpoint_errors(
    tmp_path: Path, written: dict[str, Path], shard: str
) -> None:
    ck = _copy(written["hf-sharded"], tmp_path / "ck")
    index_path = ck / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    name = sorted(index["weight_map"])[-1]
    index["weight_map"][name] = shard  # a NUL in the name raised ValueError before
    index_path.write_text(json.dumps(index))
    with pytest.raises(CheckpointError):
        load_checkpoint(ck)


def test_aliased_tensors_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"a": torch.zeros(4, dtype=torch.float32), "b": torch.ones(4, dtype=torch.float32)}, str(path))
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header["b"]["data_offsets"] = [8, 24]  # b's bytes now share a's second half
    _write_raw(path, json.dumps(header).encode(), raw[8 + n :])
    with pytest.raises(CheckpointError, match="overlaps") as info:
        SafetensorsFile(path)
    assert info.value.path == path and info.value.tensor in ("a", "b")


@needs_posix
def test_fifo_named_model_safetensors_is_refused_without_opening_it(tmp_path: Path, written: dict[str, Path]) -> None:
    ck = _copy(written["hf"], tmp_path / "ck")
    fifo = ck / "model.safetensors"
    fifo.unlink()
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            load_checkpoint(ck)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():
        # Before: open() blocked waiting for a writer. Be that writer, so the thread ends, then fail.
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(timeout=20)
        pytest.fail("the loader hung opening a FIFO")
    assert len(outcome) == 1 and isinstance(outcome[0], CheckpointError)
    assert outcome[0].path == fifo and "FIFO" in str(outcome[0])


@needs_posix
def test_symlink_loop_says_so(tmp_path: Path) -> None:
    loop = tmp_path / "model"
    loop.symlink_to(loop)  # a folder that is a symlink to itself; "no such file or directory" before
    with pytest.raises(CheckpointError, match="symlink loop") as info:
        load_checkpoint(loop)
    assert info.value.path == loop


@pytest.fixture
def locked(tmp_path: Path, written: dict[str, Path]) -> Iterator[Path]:
    ck = _copy(written["hf"], tmp_path / "ck")
    ck.chmod(0o000)
    try:
        try:
            os.listdir(ck)
        except PermissionError:
            yield ck
        else:
            pytest.skip("this user reads a chmod 000 folder anyway (root with CAP_DAC_OVERRIDE)")
    finally:
        ck.chmod(0o700)


@needs_posix
def test_unreadable_folder_is_permission_denied_naming_it(locked: Path) -> None:
    # A PermissionError traceback before.
    with pytest.raises(CheckpointError, match="permission denied") as info:
        load_checkpoint(locked)
    assert info.value.path == locked
