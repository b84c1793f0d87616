"""Engine logits against an independent oracle: transformers' GptOssForCausalLM (eager, fp32), same weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gpt_oss_desktop import engine
from gpt_oss_desktop.engine.checkpoint import write_checkpoint
from gpt_oss_desktop.engine.checkpoint.synthetic import random_weights
from tests.helpers.models import ORACLE_CONFIG, random_ids

transformers = pytest.importorskip("transformers")

PROMPT_LEN = 3 * ORACLE_CONFIG.sliding_window + 5  # longer than the window


def _assert_matches(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    relative = float((ours - theirs).norm() / theirs.norm())
    assert relative < 1e-4, f"relative error {relative:.3e}"
    assert torch.equal(ours.argmax(-1), theirs.argmax(-1))


def _hf_logits(model: object, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float()  # type: ignore[operator]


def test_matches_transformers_on_its_own_dense_checkpoint(tmp_path: Path) -> None:
    """transformers builds and saves the model (layout c); the engine loads what transformers wrote."""
    torch.manual_seed(0)
    shape = ORACLE_CONFIG.replace(num_hidden_layers=4, vocab_size=320, sliding_layers=())
    config = transformers.GptOssConfig.from_dict(shape.to_hf_dict(mxfp4=False))
    hf = transformers.GptOssForCausalLM(config).eval()
    with torch.no_grad():
        # transformers initialises biases to zero and norms to one: randomise them so they are tested too.
        for name, param in hf.named_parameters():
            if name.endswith("bias") or name.endswith("sinks"):
                param.normal_(0.0, 0.5)
            elif "norm" in name:
                param.normal_(1.0, 0.2)
    hf.save_pretrained(tmp_path)
    ids = random_ids(PROMPT_LEN, config.vocab_size, seed=1)
    ours = engine.load_model(tmp_path, dtype=torch.float32).logits(ids)
    _assert_matches(ours, _hf_logits(hf, ids))


def test_matches_transformers_on_our_mxfp4_checkpoint(tmp_path: Path) -> None:
    """Our writer's MXFP4 checkpoint, dequantised by transformers' own code, against our packed-MXFP4 path."""
    weights = random_weights(ORACLE_CONFIG, seed=3)
    write_checkpoint(tmp_path / "hf", ORACLE_CONFIG, weights, layout="hf", shards=2, dtype=torch.float32)
    write_checkpoint(tmp_path / "original", ORACLE_CONFIG, weights, layout="original", dtype=torch.float32)
    hf = transformers.GptOssForCausalLM.from_pretrained(
        tmp_path / "hf",
        quantization_config=transformers.Mxfp4Config(dequantize=True),
        dtype=torch.float32,
        attn_implementation="eager",
    ).eval()
    ids = random_ids(PROMPT_LEN, ORACLE_CONFIG.vocab_size, seed=2)
    theirs = _hf_logits(hf, ids)
    for layout in ("original", "hf"):
        ours = engine.load_model(tmp_path / layout, dtype=torch.float32).logits(ids)
        _assert_matches(ours, theirs)


def test_the_three_layouts_give_identical_logits(tmp_path: Path) -> None:
    weights = random_weights(ORACLE_CONFIG, seed=4)
    ids = random_ids(PROMPT_LEN, ORACLE_CONFIG.vocab_size, seed=5)
    results = {}
    for layout in ("original", "hf", "hf-dense"):
        write_checkpoint(tmp_path / layout, ORACLE_CONFIG, weights, layout=layout, dtype=torch.float32)
        results[layout] = engine.load_model(tmp_path / layout, dtype=torch.float32).logits(ids)
    assert torch.equal(results["original"], results["hf"])
    # hf-dense holds the exact dequantised values, but dense experts take the BLAS path while packed ones may take
    # the fused CPU MXFP4 kernel: same math, different fp32 summation order.
    torch.testing.assert_close(results["hf-dense"], results["original"], rtol=1e-5, atol=1e-5)


def test_bf16_default_stays_close_to_fp32(tmp_path: Path) -> None:
    weights = random_weights(ORACLE_CONFIG, seed=6)
    write_checkpoint(tmp_path, ORACLE_CONFIG, weights, layout="original")
    ids = random_ids(PROMPT_LEN, ORACLE_CONFIG.vocab_size, seed=7)
    bf16 = engine.load_model(tmp_path).logits(ids)
    fp32 = engine.load_model(tmp_path, dtype=torch.float32).logits(ids)
    assert bf16.dtype == torch.float32
    assert float((bf16 - fp32).norm() / fp32.norm()) < 3e-2
