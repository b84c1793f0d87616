"""Convert a Hugging Face-layout gpt-oss checkpoint to GGUF with llama.cpp's own converter (convert_hf_to_gguf.py).

The converter keeps the MXFP4 experts as MXFP4 (it repacks the nibbles) and writes the other matrices in ``outtype``
(bf16 as in ggml-org's official gpt-oss GGUFs; ``q8_0`` for the smaller variant), norms/biases/sinks in f32. It reads
the vocabulary through transformers, so a checkpoint without tokenizer files (the generated test checkpoints) gets
ones made from the bundled o200k vocabulary. The checkpoint folder itself is never written to: the converter reads a
staging folder of links to its files plus the tokenizer files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from pathlib import Path

from tools.bench.o200k_tokenizer import write_tokenizer_files

logger = logging.getLogger(__name__)

OUTTYPES = ("bf16", "q8_0")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def check_hf_layout(model_dir: Path) -> dict[str, object]:
    """The checkpoint's config.json, after checking it is the Hugging Face MXFP4 layout the converter reads."""
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise ValueError(
            f"{model_dir}: no config.json; llama.cpp's converter reads the Hugging Face layout (--layout hf)"
        )
    config: dict[str, object] = json.loads(config_path.read_text())
    if config.get("architectures") != ["GptOssForCausalLM"]:
        raise ValueError(f"{model_dir}: architectures is {config.get('architectures')}, not GptOssForCausalLM")
    quant = config.get("quantization_config")
    if not isinstance(quant, dict) or quant.get("quant_method") != "mxfp4":
        raise ValueError(f"{model_dir}: experts are not MXFP4 (quantization_config.quant_method != 'mxfp4')")
    return config


def _fingerprint(model_dir: Path) -> str:
    """Changes when any file of the checkpoint changes (name, size, mtime), so a stale GGUF is never reused."""
    digest = hashlib.sha256(str(model_dir.resolve()).encode())
    for path in sorted(model_dir.iterdir()):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


def stage_checkpoint(model_dir: Path, staging: Path, vocab_path: Path) -> Path:
    """A folder of links to ``model_dir``'s files, plus o200k tokenizer files when the checkpoint has none."""
    config = check_hf_layout(model_dir)
    staging.mkdir(parents=True, exist_ok=True)
    for path in model_dir.iterdir():
        link = staging / path.name
        if path.is_file() and not link.exists():
            link.symlink_to(path.resolve())
    if not all((model_dir / name).is_file() for name in _TOKENIZER_FILES):
        vocab_size = config.get("vocab_size")
        if not isinstance(vocab_size, int):
            raise ValueError(f"{model_dir}: config.json has no integer vocab_size")
        for name in _TOKENIZER_FILES:
            (staging / name).unlink(missing_ok=True)
        write_tokenizer_files(staging, vocab_path, vocab_size)
    return staging


def convert_to_gguf(
    model_dir: Path,
    *,
    converter: Path,
    cache: Path,
    vocab_path: Path,
    outtype: str = "bf16",
    python: str,
) -> Path:
    """The GGUF of ``model_dir`` in ``outtype`` (converted once, then reused from ``cache/gguf``)."""
    if outtype not in OUTTYPES:
        raise ValueError(f"outtype must be one of {OUTTYPES}, got {outtype!r}")
    key = f"{model_dir.resolve().name}-{_fingerprint(model_dir)}"
    out = cache / "gguf" / f"{key}-{outtype}.gguf"
    if out.is_file():
        return out
    staging = stage_checkpoint(model_dir, cache / "staging" / key, vocab_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    logger.info("converting %s to %s", model_dir, out)
    # The converter finds its gguf-py and conversion/ packages next to itself; torch, transformers, numpy and
    # safetensors come from ``python``'s environment.
    env = {**os.environ, "PYTHONPATH": str(converter.parent / "gguf-py")}
    done = subprocess.run(
        [python, str(converter), str(staging), "--outtype", outtype, "--outfile", str(partial)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"convert_hf_to_gguf.py failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    partial.rename(out)
    return out
