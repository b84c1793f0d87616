"""Each broken checkpoint is a real file on disk, and each fails with a typed error naming the file and tensor."""

from __future__ import annotations

import json
import logging
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from gpt_oss_desktop.engine.checkpoint import load_checkpoint
from gpt_oss_desktop.engine.checkpoint.safetensors_io import SafetensorsFile
from gpt_oss_desktop.engine.errors import CheckpointError, ConfigError

from .conftest import TINY


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    f = SafetensorsFile(path)
    return {name: f.tensor(name).clone() for name in f.entries}


def _rewrite(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    path.unlink()
    save_file(tensors, str(path), metadata={"format": "pt"})


def _raises(path: Path, tensor: str | None, *, ck: Path | None = None) -> CheckpointError:
    """Loading the checkpoint ``ck`` (default: the folder of ``path``) fails on ``path``, naming ``tensor``."""
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path.parent if ck is None else ck)
    err = info.value
    assert err.path == path
    assert str(path) in str(err)
    assert err.tensor == tensor
    if tensor is not None:
        assert tensor in str(err)
    assert "\n" not in str(err)
    return err


def _header(path: Path) -> tuple[int, dict[str, object]]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return n, json.loads(raw[8 : 8 + n])


@pytest.fixture
def weights(tmp_path: Path, written: dict[str, Path]) -> Path:
    """``model.safetensors`` of a fresh copy of the single-file original-layout checkpoint, to break."""
    return _copy(written["original"], tmp_path / "ck") / "model.safetensors"


def test_missing_tensor(weights: Path) -> None:
    tensors = _tensors(weights)
    del tensors["block.1.mlp.gate.bias"]
    _rewrite(weights, tensors)
    err = _raises(weights, "block.1.mlp.gate.bias")
    assert "missing tensor" in str(err)


def test_missing_hf_tensor_is_named_by_its_hf_name(tmp_path: Path, written: dict[str, Path]) -> None:
    ck = _copy(written["hf"], tmp_path / "ck")
    file = ck / "model.safetensors"
    tensors = _tensors(file)
    del tensors["model.layers.0.self_attn.k_proj.weight"]
    _rewrite(file, tensors)
    _raises(file, "model.layers.0.self_attn.k_proj.weight")


def test_missing_tensor_in_sharded_checkpoint_names_the_index(tmp_path: Path, written: dict[str, Path]) -> None:
    ck = _copy(written["hf-sharded"], tmp_path / "ck")
    index_path = ck / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    name = "model.layers.1.mlp.experts.down_proj_scales"
    shard = ck / index["weight_map"].pop(name)
    index_path.write_text(json.dumps(index))
    tensors = _tensors(shard)
    del tensors[name]
    _rewrite(shard, tensors)
    _raises(index_path, name)


def test_wrong_shape(weights: Path) -> None:
    tensors = _tensors(weights)
    tensors["block.0.attn.sinks"] = torch.zeros(TINY.num_attention_heads + 1, dtype=torch.bfloat16)
    _rewrite(weights, tensors)
    err = _raises(weights, "block.0.attn.sinks")
    assert "[5]" in str(err) and "[4]" in str(err)


def test_wrong_dtype(weights: Path) -> None:
    tensors = _tensors(weights)
    tensors["block.1.mlp.mlp1_weight.scales"] = tensors["block.1.mlp.mlp1_weight.scales"].view(torch.int8)
    tensors["norm.scale"] = tensors["norm.scale"].to(torch.float64)
    _rewrite(weights, tensors)
    err = _raises(weights, "block.1.mlp.mlp1_weight.scales")  # file order: blocks come before the final norm
    assert "I8" in str(err) and "U8" in str(err)


def test_truncated_file(weights: Path) -> None:
    _, header = _header(weights)
    last = max((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][1])  # type: ignore[index]
    data = weights.read_bytes()
    weights.write_bytes(data[:-100])
    err = _raises(weights, last)
    assert "truncated" in str(err)


def test_truncated_inside_header(weights: Path) -> None:
    n, _ = _header(weights)
    weights.write_bytes(weights.read_bytes()[: 8 + n // 2])
    err = _raises(weights, None)
    assert "header length" in str(err)


def test_corrupt_header_json(weights: Path) -> None:
    data = bytearray(weights.read_bytes())
    data[8:12] = b"\x00\xff{]"
    weights.write_bytes(bytes(data))
    err = _raises(weights, None)
    assert "corrupt" in str(err)


def test_corrupt_header_offsets(weights: Path) -> None:
    n, header = _header(weights)
    entry = header["block.0.attn.qkv.bias"]
    assert isinstance(entry, dict)
    begin, end = entry["data_offsets"]
    entry["data_offsets"] = [begin, end - 2]  # no longer shape * itemsize
    raw = json.dumps(header, separators=(",", ":")).encode()
    assert len(raw) <= n
    raw += b" " * (n - len(raw))  # same header length, so every other offset stays valid
    data = weights.read_bytes()
    weights.write_bytes(data[:8] + raw + data[8 + n :])
    err = _raises(weights, "block.0.attn.qkv.bias")
    assert "data_offsets" in str(err)


def test_missing_shard(tmp_path: Path, written: dict[str, Path]) -> None:
    ck = _copy(written["original-sharded"], tmp_path / "ck")
    index = json.loads((ck / "model.safetensors.index.json").read_text())
    shard = ck / "model--00002-of-00003.safetensors"
    first = next(name for name, f in index["weight_map"].items() if f == shard.name)
    shard.unlink()
    err = _raises(shard, first)
    assert "missing" in str(err)


def test_missing_shard_without_index(tmp_path: Path, written: dict[str, Path]) -> None:
    ck = _copy(written["original-sharded"], tmp_path / "ck")
    (ck / "model.safetensors.index.json").unlink()
    (ck / "model--00003-of-00003.safetensors").unlink()
    _raises(ck / "model--00003-of-00003.safetensors", None)


def test_index_names_a_missing_file(tmp_path: Path, written: dict[str, Path]) -> None:
    ck = _copy(written["hf-sharded"], tmp_path / "ck")
    index_path = ck / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    index["weight_map"]["lm_head.weight"] = "model-00007-of-00009.safetensors"
    index_path.write_text(json.dumps(index))
    _raises(ck / "model-00007-of-00009.safetensors", "lm_head.weight")


def test_index_maps_a_tensor_to_the_wrong_shard(tmp_path: Path, written: dict[str, Path]) -> None:
    ck = _copy(written["hf-sharded"], tmp_path / "ck")
    index_path = ck / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    wrong = "model-00000-of-00002.safetensors"
    assert index["weight_map"]["lm_head.weight"] != wrong
    index["weight_map"]["lm_head.weight"] = wrong
    index_path.write_text(json.dumps(index))
    _raises(ck / wrong, "lm_head.weight")


def _with_config(src: Path, dst: Path, **changes: Any) -> Path:
    """A copy of the checkpoint ``src`` at ``dst`` with ``changes`` written into its config.json; that file's path."""
    cfg_path = _copy(src, dst) / "config.json"
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), **changes}))
    return cfg_path


def test_config_with_more_layers_than_the_weights(tmp_path: Path, written: dict[str, Path]) -> None:
    cfg_path = _with_config(written["original"], tmp_path / "ck", num_hidden_layers=4)
    err = _raises(cfg_path, "block.2.attn.norm.scale")
    assert "num_hidden_layers=4" in str(err) and "2 layers" in str(err)


def test_config_with_fewer_layers_than_the_weights(tmp_path: Path, written: dict[str, Path]) -> None:
    cfg_path = _with_config(written["hf"], tmp_path / "ck", num_hidden_layers=1, layer_types=["sliding_attention"])
    err = _raises(cfg_path, "model.layers.1.input_layernorm.weight")
    assert "num_hidden_layers=1" in str(err)


def test_config_with_another_vocab(tmp_path: Path, written: dict[str, Path]) -> None:
    cfg_path = _with_config(written["original"], tmp_path / "ck", vocab_size=1024)
    err = _raises(cfg_path.parent / "model.safetensors", "embedding.weight")
    assert "vocab_size=1024" in str(err) and "[512, 64]" in str(err)


def test_not_a_gpt_oss_config(tmp_path: Path, written: dict[str, Path]) -> None:
    ck = _copy(written["hf"], tmp_path / "ck")
    (ck / "config.json").write_text(
        json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64})
    )
    with pytest.raises(ConfigError, match="not a gpt-oss config") as info:
        load_checkpoint(ck)
    assert info.value.path == ck / "config.json"


def test_original_config_missing_keys(tmp_path: Path, written: dict[str, Path]) -> None:
    ck = _copy(written["original"], tmp_path / "ck")
    cfg = json.loads((ck / "config.json").read_text())
    del cfg["rope_ntk_beta"]
    (ck / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="rope_ntk_beta"):
        load_checkpoint(ck)


def test_empty_and_missing_folders(tmp_path: Path, written: dict[str, Path]) -> None:
    err = _raises(tmp_path, None, ck=tmp_path)
    assert "config.json" in str(err)
    _raises(tmp_path / "nope", None, ck=tmp_path / "nope")
    ck = tmp_path / "ck"
    ck.mkdir()
    shutil.copy(written["original"] / "config.json", ck / "config.json")
    err = _raises(ck, None, ck=ck)
    assert "model.safetensors" in str(err)


def test_unknown_extra_tensor_warns(weights: Path, caplog: pytest.LogCaptureFixture) -> None:
    tensors = _tensors(weights)
    tensors["block.0.attn.rotary.inv_freq"] = torch.ones(8)
    _rewrite(weights, tensors)
    with caplog.at_level(logging.WARNING, logger="gpt_oss_desktop.engine.checkpoint"):
        loaded = load_checkpoint(weights.parent)
    assert "block.0.attn.rotary.inv_freq" not in loaded.tensors
    assert any("block.0.attn.rotary.inv_freq" in r.getMessage() for r in caplog.records)
