"""Find, validate and memory-map a gpt-oss checkpoint into canonical (OpenAI original) tensor names.

Nothing is read beyond the safetensors headers at load time: tensors are views over private file mappings, so RSS
grows only as pages are touched, and MXFP4 experts are never dequantised here. The only copies are HF's q/k/v
projections, concatenated into the canonical ``qkv`` (a few percent of the non-expert bytes).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from gpt_oss_desktop.engine.checkpoint.names import (
    HfSource,
    Layout,
    TensorSpec,
    canonical_specs,
    hf_part_shapes,
    hf_source,
    layer_index,
)
from gpt_oss_desktop.engine.checkpoint.safetensors_io import MAX_HEADER_ENTRIES, TORCH_TO_SAFETENSORS, SafetensorsFile
from gpt_oss_desktop.engine.config import MAX_CONFIG_BYTES, ORIGINAL_CONFIG_KEYS, ModelConfig
from gpt_oss_desktop.engine.errors import (
    CheckpointError,
    ConfigError,
    InsufficientMemoryError,
    MissingFilesError,
    NotAModelFolderError,
    UnsupportedCheckpointError,
)
from gpt_oss_desktop.engine.input_files import describe_os_error, is_present, read_json, stat_path

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
DTYPES_NAME = "dtypes.json"
INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
# original shards are 1-based with a double dash, HF shards 0-based with a single dash (docs/model.md#shard-names)
_SHARD_RE = re.compile(r"^model(--?)(\d{5})-of-(\d{5})\.safetensors$")
# The index of gpt-oss-120b is ~60 KB; the tensor count is bounded like one safetensors header's.
MAX_INDEX_BYTES = 16 * 1024 * 1024
MAX_INDEX_TENSORS = 4 * MAX_HEADER_ENTRIES
MAX_DTYPES_BYTES = 16 * 1024 * 1024
# Weights some other runtime saved (llama.cpp, PyTorch pickles, ONNX): named when a folder holds no safetensors.
_FOREIGN_WEIGHT_SUFFIXES = frozenset({".gguf", ".bin", ".pt", ".pth", ".ckpt", ".onnx"})

_EXPECTED_FILES = (
    "an OpenAI original/ folder (config.json, dtypes.json, model.safetensors or model--*-of-*.safetensors + "
    "model.safetensors.index.json) or a Hugging Face folder (config.json, model.safetensors or "
    "model.safetensors.index.json + model-*-of-*.safetensors)"
)


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A validated checkpoint: config plus memory-mapped tensors under canonical names (file dtypes)."""

    config: ModelConfig
    layout: Layout
    root: Path
    files: tuple[Path, ...]
    tensors: Mapping[str, torch.Tensor]
    nbytes: int

    @property
    def mxfp4(self) -> bool:
        """True when experts are packed MXFP4 (``*.blocks``/``*.scales``), False for dense ``mlp{1,2}_weight``."""
        return self.layout.mxfp4

    @property
    def file_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)


# ---------------------------------------------------------------------------------------------------- discovery
def _has_weights(folder: Path) -> bool:
    return (folder / INDEX_NAME).is_file() or any(folder.glob("*.safetensors"))


def resolve_root(path: str | Path) -> Path:
    """The single folder to load: ``original/`` of a Hub snapshot when it holds weights, else ``path`` itself.

    Raises:
        MissingFilesError: nothing there.
        CheckpointError: a symlink loop, or a folder that cannot be read (permission denied).
    """
    p = Path(path).expanduser()
    if not stat.S_ISDIR(stat_path(p).st_mode):
        # Pointing at config.json or a .safetensors file means "this folder".
        p = p.parent
    try:
        os.listdir(p)  # a chmod 000 folder: say so here, not as a PermissionError from deep inside the loader
    except OSError as exc:
        raise CheckpointError(f"cannot open the folder: {describe_os_error(exc)}", p) from None
    original = p / "original"
    try:
        if original.is_dir() and (original / CONFIG_NAME).is_file() and _has_weights(original):
            if _has_weights(p):
                logger.info("%s holds both HF and original/ weights; loading original/ only", p)
            return original
    except OSError as exc:  # e.g. original/ is unreadable: name it rather than silently load the HF files
        raise CheckpointError(f"cannot open the folder: {describe_os_error(exc)}", original) from None
    return p


@dataclass(frozen=True, slots=True)
class _Weights:
    """name -> file for every tensor in a checkpoint folder."""

    by_name: dict[str, SafetensorsFile]
    files: tuple[SafetensorsFile, ...]
    # where a missing tensor "should" have been: the index when there is one, else the single file
    where: Path


def _read_json(path: Path, max_bytes: int, max_items: int | None = None) -> Any:
    try:
        return read_json(path, max_bytes, max_items=max_items)
    except CheckpointError as exc:
        raise CheckpointError(f"cannot read JSON: {exc.reason}", path) from None


def _discover_weights(root: Path) -> _Weights:
    index_path = root / INDEX_NAME
    # is_present, not is_file: a FIFO or folder under these names is refused by name when opened, not skipped.
    if is_present(index_path):
        return _weights_from_index(root, index_path)
    single = root / SINGLE_NAME
    if is_present(single):
        f = SafetensorsFile(single)
        return _Weights({name: f for name in f.entries}, (f,), single)
    found = sorted(root.glob("*.safetensors"))
    if not found:
        raise MissingFilesError(f"no weights found: expected {SINGLE_NAME}, or {INDEX_NAME} with its shards", root)
    _check_shard_set(root, found)
    files = tuple(SafetensorsFile(p) for p in found)
    by_name: dict[str, SafetensorsFile] = {}
    for f in files:
        for name in f.entries:
            if name in by_name:
                raise CheckpointError(f"tensor is stored twice, also in {by_name[name].path.name}", f.path, name)
            by_name[name] = f
    return _Weights(by_name, files, files[0].path if len(files) == 1 else root)


def _check_shard_set(root: Path, found: list[Path]) -> None:
    """Without an index, shard names are the only record of how many shards there should be."""
    series: dict[tuple[str, int], set[int]] = {}
    for p in found:
        m = _SHARD_RE.match(p.name)
        if m:
            series.setdefault((m.group(1), int(m.group(3))), set()).add(int(m.group(2)))
    for (dash, last), present in series.items():
        # original: model--00001-of-00007 .. 00007; HF: model-00000-of-00014 .. 00014 ("of" = last index)
        wanted = range(1, last + 1) if dash == "--" else range(last + 1)
        for k in wanted:
            if k not in present:
                name = f"model{dash}{k:05d}-of-{last:05d}.safetensors"
                raise MissingFilesError(f"missing shard ({len(present)} of {len(wanted)} present)", root / name)


def _weights_from_index(root: Path, index_path: Path) -> _Weights:
    # Each weight_map entry is one "name": "file" pair (2 separators); metadata adds a few.
    index = _read_json(index_path, MAX_INDEX_BYTES, max_items=2 * MAX_INDEX_TENSORS + 64)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
    ):
        raise CheckpointError("index has no valid weight_map {tensor: file}", index_path)
    if len(weight_map) > MAX_INDEX_TENSORS:
        raise CheckpointError(
            f"weight_map lists {len(weight_map):,} tensors; more than {MAX_INDEX_TENSORS:,} is not plausible",
            index_path,
        )
    first_tensor: dict[str, str] = {}
    for name, fname in weight_map.items():
        first_tensor.setdefault(fname, name)
    files: dict[str, SafetensorsFile] = {}
    for fname, tensor in first_tensor.items():
        shard = root / fname
        if Path(fname).name != fname or not is_present(shard):
            raise MissingFilesError(
                f"shard {fname} named in {INDEX_NAME} is missing (incomplete download?)", shard, tensor
            )
        files[fname] = SafetensorsFile(shard)
    by_name: dict[str, SafetensorsFile] = {}
    for name, fname in weight_map.items():
        f = files[fname]
        if name not in f.entries:
            raise CheckpointError(
                f"{INDEX_NAME} maps this tensor to {fname} but the file does not hold it", f.path, name
            )
        by_name[name] = f
    for f in files.values():
        for name in f.entries:
            if name not in by_name:
                logger.warning("%s: tensor %r is not listed in %s; using it anyway", f.path, name, INDEX_NAME)
                by_name[name] = f
    return _Weights(by_name, tuple(files.values()), index_path)


# ---------------------------------------------------------------------------------------------------- layout
def _is_original_config(raw: Mapping[str, Any]) -> bool:
    # Mirrors ModelConfig.from_dict: any HF marker key means the HF spelling.
    hf_markers = ("num_local_experts", "model_type", "architectures")
    return all(k in raw for k in ORIGINAL_CONFIG_KEYS) and not any(k in raw for k in hf_markers)


def _detect_layout(raw: Mapping[str, Any], names: set[str], config_path: Path) -> Layout:
    if _is_original_config(raw):
        return Layout.ORIGINAL
    quant = raw.get("quantization_config")
    says_mxfp4 = isinstance(quant, dict) and quant.get("quant_method") == "mxfp4"
    has_blocks = any(n.endswith(".mlp.experts.gate_up_proj_blocks") for n in names)
    has_dense = any(n.endswith(".mlp.experts.gate_up_proj") for n in names)
    # The tensors decide (a config can outlive a re-save); the config only breaks a tie.
    if has_blocks and not has_dense:
        layout = Layout.HF_MXFP4
    elif has_dense and not has_blocks:
        layout = Layout.HF_DENSE
    else:
        layout = Layout.HF_MXFP4 if says_mxfp4 else Layout.HF_DENSE
    if says_mxfp4 != (layout is Layout.HF_MXFP4):
        logger.warning(
            "%s: quantization_config %s but the weights hold %s experts; going by the weights",
            config_path,
            "says mxfp4" if says_mxfp4 else "is absent",
            "MXFP4" if layout.mxfp4 else "dense",
        )
    return layout


def _check_dtypes_json(root: Path, specs: Mapping[str, TensorSpec]) -> None:
    path = root / DTYPES_NAME
    if not path.is_file():
        logger.warning("%s: no %s (OpenAI's original folder has one); continuing without it", root, DTYPES_NAME)
        return
    labels = _read_json(path, MAX_DTYPES_BYTES)
    if not isinstance(labels, dict):
        logger.warning("%s: not a {tensor: dtype} object; ignored", path)
        return
    for name, spec in specs.items():
        label = labels.get(name)
        if label is not None and label != spec.label:
            logger.warning("%s: %s is labelled %r, expected %r", path, name, label, spec.label)


# ---------------------------------------------------------------------------------------------------- validation
def _config_hint(config: ModelConfig) -> str:
    return (
        f"vocab_size={config.vocab_size}, hidden_size={config.hidden_size}, "
        f"intermediate_size={config.intermediate_size}, num_experts={config.num_experts}, "
        f"heads={config.num_attention_heads}/{config.num_key_value_heads}, head_dim={config.head_dim}"
    )


def _dtype_name(dtype: torch.dtype) -> str:
    return TORCH_TO_SAFETENSORS.get(dtype, str(dtype))


def _check_layer_count(
    config: ModelConfig, config_path: Path, names: set[str], first_name_of_layer: dict[int, str]
) -> None:
    layers = {idx for idx in (layer_index(n) for n in names) if idx is not None}
    if not layers:
        return  # nothing layered at all: the per-tensor check reports the first missing tensor
    have = max(layers) + 1
    want = config.num_hidden_layers
    if have < want:
        raise CheckpointError(
            f"config.json says num_hidden_layers={want} but the weights hold only {have} layers",
            config_path,
            first_name_of_layer[have],
        )
    if have > want:
        extra = sorted(n for n in names if layer_index(n) == want)
        raise CheckpointError(
            f"config.json says num_hidden_layers={want} but the weights hold {have} layers",
            config_path,
            extra[0] if extra else None,
        )


def _checked(
    weights: _Weights, name: str, shape: tuple[int, ...], spec: TensorSpec, config: ModelConfig, config_path: Path
) -> SafetensorsFile:
    f = weights.by_name.get(name)
    if f is None:
        raise CheckpointError(f"missing tensor (expected shape {list(shape)})", weights.where, name)
    entry = f.entries[name]
    if entry.dtype not in spec.dtypes:
        allowed = ", ".join(sorted(_dtype_name(d) for d in spec.dtypes))
        # A readable tensor in another dtype (fp16, int8, ...): a quantization or re-save gpt-oss's layouts do not have.
        raise UnsupportedCheckpointError(f"dtype {_dtype_name(entry.dtype)}, expected {allowed}", f.path, name)
    if entry.shape != shape:
        raise CheckpointError(
            f"shape {list(entry.shape)} does not match {list(shape)} expected from {config_path} "
            f"({_config_hint(config)})",
            f.path,
            name,
        )
    return f


# ---------------------------------------------------------------------------------------------------- loading
def load_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """Load a gpt-oss checkpoint folder (original/, HF MXFP4, HF dense, or a Hub snapshot holding several).

    Raises:
        NotAModelFolderError: the folder holds neither a config.json nor weights (the wrong folder).
        MissingFilesError: the folder, config.json, the weights or a shard is not there.
        UnsupportedCheckpointError: tensors in a dtype gpt-oss's layouts do not use (a quantized re-save).
        ConfigError: config.json is unreadable or not a gpt-oss config.
        CheckpointError: anything else damaged: corrupt files, missing tensors, tensors that contradict config.json.
    """
    root = resolve_root(path)
    try:
        return _load(root)
    except OSError as exc:
        # A file that vanished or turned unreadable between checks (e.g. a permission change mid-load).
        where = Path(exc.filename) if isinstance(exc.filename, str) else root
        if exc.errno == errno.ENOMEM:  # mapping the files ran out of address space or memory: nothing is damaged
            # no path in the text: whoever reports it names the model once (app.backends.local_engine)
            raise InsufficientMemoryError("not enough memory to map the checkpoint's files", "cpu") from exc
        error = MissingFilesError if isinstance(exc, FileNotFoundError) else CheckpointError
        raise error(describe_os_error(exc), where) from None


def _foreign_weights(root: Path) -> list[str]:
    """Weight files of other formats (GGUF, PyTorch pickles, ONNX) directly in ``root``, by name."""
    try:
        return sorted(p.name for p in root.iterdir() if p.suffix.lower() in _FOREIGN_WEIGHT_SUFFIXES and p.is_file())
    except OSError:
        return []  # the loader names an unreadable folder itself, where it trips on it


def _not_a_model(root: Path, has_config: bool) -> CheckpointError:
    """Why a folder without weights in any form is no checkpoint: the wrong folder, or one of another format."""
    foreign = _foreign_weights(root)
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        return UnsupportedCheckpointError(
            f"holds weights in a format this app does not load ({shown}); it loads gpt-oss safetensors", root
        )
    why = f"its {CONFIG_NAME} is not a gpt-oss config, and it has" if has_config else f"it has no {CONFIG_NAME} and"
    return NotAModelFolderError(f"{why} no weights (*.safetensors)", root)


def _load(root: Path) -> LoadedCheckpoint:
    config_path = root / CONFIG_NAME
    has_config = is_present(config_path)
    has_weights = is_present(root / INDEX_NAME) or any(root.glob("*.safetensors"))
    if not has_config and not has_weights:
        raise _not_a_model(root, has_config=False)  # an empty folder, or one of documents: the wrong folder
    if not has_config:  # weights without their config: an incomplete download
        raise MissingFilesError(f"no {CONFIG_NAME}: expected {_EXPECTED_FILES}", root)
    try:
        raw = read_json(config_path, MAX_CONFIG_BYTES, error=ConfigError)
        if not isinstance(raw, dict):
            raise ConfigError("config.json must hold a JSON object", config_path)
        config = ModelConfig.from_dict(raw, config_path)  # ConfigError for anything that is not gpt-oss
    except ConfigError:
        # A config.json of some other program with no weights beside it is no model, not a damaged one.
        if not has_weights:
            raise _not_a_model(root, has_config=True) from None
        raise
    weights = _discover_weights(root)
    names = set(weights.by_name)
    layout = _detect_layout(raw, names, config_path)
    specs = canonical_specs(config, mxfp4=layout.mxfp4)
    if layout is Layout.ORIGINAL:
        _check_dtypes_json(root, specs)

    def sources(canonical: str) -> HfSource:
        return HfSource("direct", (canonical,)) if layout is Layout.ORIGINAL else hf_source(canonical)

    first_of_layer: dict[int, str] = {}
    for cname in specs:
        idx = layer_index(cname)
        if idx is not None and idx not in first_of_layer:
            first_of_layer[idx] = sources(cname).names[0]
    _check_layer_count(config, config_path, names, first_of_layer)

    tensors: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for cname, spec in specs.items():
        src = sources(cname)
        part_shapes = (spec.shape,) if layout is Layout.ORIGINAL else hf_part_shapes(config, cname, spec.shape)
        parts: list[torch.Tensor] = []
        for sname, sshape in zip(src.names, part_shapes, strict=True):
            f = _checked(weights, sname, sshape, spec, config, config_path)
            parts.append(f.tensor(sname))
            used.add(sname)
        if src.kind == "direct":
            tensors[cname] = parts[0]
        elif src.kind == "transpose":
            # HF dense experts: gate_up_proj [E, H, 2I] -> [E, 2I, H], down_proj [E, I, H] -> [E, H, I] (a view)
            tensors[cname] = parts[0].transpose(-1, -2)
        else:
            # q [q_size, ...] | k [kv_size, ...] | v [kv_size, ...] -> qkv rows; a copy, so put it in one dtype
            tensors[cname] = torch.cat([p.to(parts[0].dtype) for p in parts], dim=0)

    extra = sorted(names - used)
    if extra:
        shown = ", ".join(extra[:5]) + (f", ... ({len(extra)} in all)" if len(extra) > 5 else "")
        logger.warning("%s: ignoring %d unexpected tensor(s): %s", root, len(extra), shown)

    nbytes = sum(t.numel() * t.element_size() for t in tensors.values())
    logger.debug("loaded %s checkpoint from %s: %d tensors, %d bytes", layout.value, root, len(tensors), nbytes)
    return LoadedCheckpoint(
        config=config,
        layout=layout,
        root=root,
        files=tuple(f.path for f in weights.files),
        tensors=MappingProxyType(tensors),
        nbytes=nbytes,
    )
