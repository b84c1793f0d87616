"""tools/bench/gguf_convert.py: which checkpoints llama.cpp's converter can read, and the staging folder it reads."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from gpt_oss_desktop.engine.cli import main
from tools.bench.gguf_convert import check_hf_layout, convert_to_gguf, stage_checkpoint


def _tiny(tmp_path: Path, layout: str) -> Path:
    out = tmp_path / layout
    assert main(["make-test-model", str(out), "--preset", "tiny", "--layout", layout]) == 0
    return out


def _vocab(tmp_path: Path) -> Path:
    path = tmp_path / "v.tiktoken"
    path.write_text("".join(f"{base64.b64encode(bytes([b])).decode()} {b}\n" for b in range(256)))
    return path


def test_only_the_hf_mxfp4_layout_is_accepted(tmp_path: Path) -> None:
    assert check_hf_layout(_tiny(tmp_path, "hf"))["architectures"] == ["GptOssForCausalLM"]
    with pytest.raises(ValueError, match="GptOssForCausalLM"):
        check_hf_layout(_tiny(tmp_path, "original"))
    with pytest.raises(ValueError, match="MXFP4"):
        check_hf_layout(_tiny(tmp_path, "hf-dense"))


def test_staging_links_the_checkpoint_and_adds_tokenizer_files(tmp_path: Path) -> None:
    model = _tiny(tmp_path, "hf")
    before = sorted(p.name for p in model.iterdir())
    staged = stage_checkpoint(model, tmp_path / "staged", _vocab(tmp_path))
    assert sorted(p.name for p in model.iterdir()) == before  # the checkpoint is left alone
    for name in before:
        assert (staged / name).resolve() == (model / name).resolve()
    tokenizer = json.loads((staged / "tokenizer.json").read_text())
    assert len(tokenizer["model"]["vocab"]) == 256 and tokenizer["model"]["merges"] == []


def test_unknown_outtype_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outtype"):
        convert_to_gguf(
            tmp_path, converter=tmp_path / "c.py", cache=tmp_path, vocab_path=tmp_path, outtype="q4_0", python="python"
        )
