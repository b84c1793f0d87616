"""Real checkpoint folders broken in one way each, for the typed load errors (engine/errors.py) and their advice.

Each builder writes a tiny, valid checkpoint (engine.checkpoint.write_checkpoint) into ``tmp`` and then breaks it the
way a user's disk does: a wrong path, an interrupted download, a damaged file, a foreign re-save.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from gpt_oss_desktop.engine.checkpoint import PRESETS, random_weights, write_checkpoint

TINY = PRESETS["tiny"]


def _valid(tmp: Path, layout: str = "hf-dense", shards: int = 1) -> Path:
    folder = tmp / f"{layout}-{shards}"
    write_checkpoint(folder, TINY, random_weights(TINY, seed=3), layout, shards=shards)
    return folder


def nothing_there(tmp: Path) -> Path:
    return tmp / "no-such-folder"


def weights_without_config(tmp: Path) -> Path:
    folder = _valid(tmp)
    (folder / "config.json").unlink()
    return folder


def config_without_weights(tmp: Path) -> Path:
    folder = _valid(tmp)
    (folder / "model.safetensors").unlink()
    return folder


def shard_left_out_of_an_interrupted_download(tmp: Path) -> Path:
    folder = _valid(tmp, "original", shards=3)
    (folder / "model--00002-of-00003.safetensors").unlink()
    (folder / "model.safetensors.index.json").unlink()  # only the shard names say one is missing
    return folder


def index_names_a_missing_shard(tmp: Path) -> Path:
    folder = _valid(tmp, "hf", shards=2)
    (folder / "model-00001-of-00001.safetensors").unlink()
    return folder


def config_that_is_not_json(tmp: Path) -> Path:
    folder = _valid(tmp)
    (folder / "config.json").write_text('{"num_hidden_layers": 2,', encoding="utf-8")
    return folder


def config_of_another_model(tmp: Path) -> Path:
    folder = _valid(tmp)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config.update(model_type="llama", architectures=["LlamaForCausalLM"])
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def truncated_weights(tmp: Path) -> Path:
    folder = _valid(tmp)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return folder


def header_that_is_not_json(tmp: Path) -> Path:
    folder = _valid(tmp)
    header = b"{not json" + b" " * 7
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    return folder


def tensor_left_out(tmp: Path) -> Path:
    folder = _valid(tmp)
    path = folder / "model.safetensors"
    tensors = load_file(str(path))
    del tensors[next(name for name in sorted(tensors) if name.endswith("self_attn.o_proj.weight"))]
    save_file(tensors, str(path), metadata={"format": "pt"})
    return folder


def weights_resaved_in_float8(tmp: Path) -> Path:
    """A re-save in float8 (another tool's quantization): every tensor readable, none in a dtype gpt-oss stores."""
    folder = _valid(tmp)
    path = folder / "model.safetensors"
    tensors = {k: t.to(torch.float8_e4m3fn) if t.is_floating_point() else t for k, t in load_file(str(path)).items()}
    save_file(tensors, str(path), metadata={"format": "pt"})
    return folder


def weights_in_a_foreign_quantization(tmp: Path) -> Path:
    """A dtype name safetensors does not define (a GGUF-style 4-bit type written by another tool)."""
    folder = tmp / "foreign"
    folder.mkdir()
    (folder / "config.json").write_text((_valid(tmp) / "config.json").read_text(encoding="utf-8"), encoding="utf-8")
    header = json.dumps({"model.embed_tokens.weight": {"dtype": "Q4_K", "shape": [2], "data_offsets": [0, 2]}})
    data = header.encode().ljust(len(header) + (-len(header)) % 8)
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(data)) + data + b"\0\0")
    return folder


Builder = Callable[[Path], Path]


def empty_folder(tmp: Path) -> Path:
    folder = tmp / "empty"
    folder.mkdir()
    return folder


def folder_of_documents(tmp: Path) -> Path:
    folder = tmp / "documents"
    folder.mkdir()
    (folder / "notes.txt").write_text("a shopping list", encoding="utf-8")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a photo")
    (folder / "sub").mkdir()
    return folder


def config_of_another_program_without_weights(tmp: Path) -> Path:
    folder = tmp / "project"
    folder.mkdir()
    (folder / "config.json").write_text('{"theme": "dark", "tabSize": 4}', encoding="utf-8")
    return folder


def weights_of_another_runtime(tmp: Path) -> Path:
    folder = tmp / "gguf"
    folder.mkdir()
    (folder / "gpt-oss-20b-Q4_K_M.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")
    return folder


MISSING: tuple[Builder, ...] = (
    nothing_there,
    weights_without_config,
    config_without_weights,
    shard_left_out_of_an_interrupted_download,
    index_names_a_missing_shard,
)
BAD_CONFIG: tuple[Builder, ...] = (config_that_is_not_json, config_of_another_model)
DAMAGED: tuple[Builder, ...] = (truncated_weights, header_that_is_not_json, tensor_left_out)
UNSUPPORTED: tuple[Builder, ...] = (weights_resaved_in_float8, weights_in_a_foreign_quantization)
# Weights, but saved by another runtime (no tensor to name): also a form this app does not load.
OTHER_FORMAT: tuple[Builder, ...] = (weights_of_another_runtime,)
# Folders that hold no model at all: the wrong folder was chosen (not damage, not an interrupted download).
NOT_A_MODEL: tuple[Builder, ...] = (empty_folder, folder_of_documents, config_of_another_program_without_weights)
ALL: tuple[Builder, ...] = (*MISSING, *BAD_CONFIG, *DAMAGED, *UNSUPPORTED, *OTHER_FORMAT, *NOT_A_MODEL)
