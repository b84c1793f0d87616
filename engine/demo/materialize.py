"""Turn the compact demo weights shipped in ``resources/demo/`` into a standard ``original/`` checkpoint.

Shipped (a few MB): ``manifest.json`` (config, used token ids, SHA-256 of the weights, training stats) and
``demo.safetensors`` (every tensor of the model, experts already MXFP4, but only the used rows of the embedding
and unembedding plus one shared row). Materialised (~100 MB, once per user and version):

    <user data dir>/models/demo-<version>/
        demo.json                       what it was built from + SHA-256 of each file below
        original/config.json, dtypes.json, model.safetensors   (engine.checkpoint.write_checkpoint)

so the normal loader loads it and the demo exercises the real loading path. The folder is built under a temporary
name and renamed into place, so it is either complete or absent; a copy whose files no longer match ``demo.json``
(interrupted by something outside this process, edited, truncated) is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any, Final

import torch
from safetensors.torch import load_file

from gpt_oss_desktop.engine.checkpoint import write_checkpoint
from gpt_oss_desktop.engine.config import ModelConfig
from gpt_oss_desktop.engine.errors import CheckpointError
from gpt_oss_desktop.engine.model_ref import DEMO_MODEL
from gpt_oss_desktop.engine.paths import user_data_dir
from gpt_oss_desktop.resources import resource_path

logger = logging.getLogger(__name__)

MANIFEST_NAME: Final = "manifest.json"
STAMP_NAME: Final = "demo.json"
CHECKPOINT_DIR: Final = "original"


def shipped_dir() -> Path:
    """The folder holding the shipped compact weights and manifest."""
    return resource_path(DEMO_MODEL)


@cache
def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError("the demo model is not installed; reinstall gpt-oss desktop", path) from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read the demo manifest: {exc}", path) from None
    return manifest


def load_manifest(source: Path | None = None) -> dict[str, Any]:
    """The demo's manifest (``source``: a folder with the compact files; default the shipped one)."""
    return _read_manifest((source or shipped_dir()) / MANIFEST_NAME)


def demo_root(data_dir: Path | None = None, source: Path | None = None) -> Path:
    """Where the demo of this version is (or will be) materialised."""
    version = load_manifest(source)["version"]
    return (data_dir if data_dir is not None else user_data_dir()) / "models" / f"{DEMO_MODEL}-{version}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def expand_weights(compact: dict[str, torch.Tensor], manifest: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Canonical full-vocabulary tensors from the compact ones.

    ``embedding.rows`` / ``unembedding.rows`` are ``[U + 1, H]``: row ``j < U`` belongs to token
    ``used_token_ids[j]`` and row ``U`` is the shared row, copied to every unused id (see tools/demo/train.py).
    """
    config = ModelConfig.from_dict(manifest["config"])
    used = torch.tensor(manifest["used_token_ids"], dtype=torch.long)
    out = {k: v for k, v in compact.items() if not k.endswith(".rows")}
    for name in ("embedding", "unembedding"):
        rows = compact[f"{name}.rows"]  # [U + 1, H]
        if rows.shape != (used.numel() + 1, config.hidden_size):
            expected = (used.numel() + 1, config.hidden_size)
            raise CheckpointError(f"{name}.rows has shape {tuple(rows.shape)}, expected {expected}")
        full = rows[-1:].expand(config.vocab_size, -1).clone()  # [V, H], every row the shared one
        full[used] = rows[:-1]
        out[f"{name}.weight"] = full
    return out


def _expected_stamp(manifest: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": manifest["version"],
        "source_sha256": manifest["weights_sha256"],
        "description": manifest["description"],
    }


def is_materialized(root: Path, manifest: dict[str, Any]) -> bool:
    """Whether ``root`` holds a complete, unmodified materialisation of ``manifest``'s weights."""
    try:
        stamp = json.loads((root / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(stamp, dict) or any(stamp.get(k) != v for k, v in _expected_stamp(manifest).items()):
        return False
    files = stamp.get("files")
    if not isinstance(files, dict) or not files:
        return False
    for rel, digest in files.items():
        path = root / rel
        if not path.is_file() or _sha256(path) != digest:
            logger.warning("demo model file %s is missing or corrupt; it will be rebuilt", path)
            return False
    return True


def _build(root: Path, source: Path, manifest: dict[str, Any]) -> None:
    """Build the materialised folder beside ``root`` and rename it into place."""
    weights_path = source / manifest["weights_file"]
    if not weights_path.is_file() or _sha256(weights_path) != manifest["weights_sha256"]:
        raise CheckpointError("the shipped demo weights are missing or corrupt; reinstall the app", weights_path)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        config = ModelConfig.from_dict(manifest["config"])
        tensors = expand_weights(load_file(str(weights_path)), manifest)
        write_checkpoint(tmp / CHECKPOINT_DIR, config, tensors, layout="original")
        files = {
            f"{CHECKPOINT_DIR}/{p.name}": _sha256(p) for p in sorted((tmp / CHECKPOINT_DIR).iterdir()) if p.is_file()
        }
        stamp = {**_expected_stamp(manifest), "files": files}
        (tmp / STAMP_NAME).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
        if root.exists():
            # A stale or corrupt copy: move it aside first (rename is atomic; deleting a tree is not).
            trash = Path(tempfile.mkdtemp(prefix=f".{root.name}.old.", dir=root.parent))
            os.replace(root, trash / "old")
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.replace(tmp, root)
        except OSError:
            # Another process finished first (root is now a non-empty folder): keep theirs if it is good.
            if not is_materialized(root, manifest):
                raise
            logger.info("demo model was materialised concurrently at %s", root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def materialize_demo(data_dir: Path | None = None, *, source: Path | None = None, force: bool = False) -> Path:
    """The materialised demo folder (a normal checkpoint folder), building it first if needed.

    Args:
        data_dir: user data folder (default :func:`engine.paths.user_data_dir`, which honours
            ``GPTOSS_DESKTOP_DATA_DIR``).
        source: folder holding ``manifest.json`` and the compact weights (default the shipped ``resources/demo``).
        force: rebuild even if a good copy exists.
    """
    source = source or shipped_dir()
    manifest = load_manifest(source)
    root = demo_root(data_dir, source)
    if force or not is_materialized(root, manifest):
        logger.info("materialising the demo model into %s", root)
        _build(root, source, manifest)
    return root


def demo_label(path: Path | str) -> str | None:
    """The toy-model description if ``path`` (a materialised root or its ``original/``) is the demo, else None."""
    p = Path(path)
    for candidate in (p / STAMP_NAME, p.parent / STAMP_NAME):
        try:
            stamp = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(stamp, dict) and isinstance(stamp.get("description"), str):
            return str(stamp["description"])
    return None
