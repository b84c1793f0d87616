"""transformers itself loads what the writer produces, and sees the same numbers we load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gpt_oss_desktop.engine.checkpoint import load_checkpoint
from gpt_oss_desktop.kernels.mxfp4 import dequantize_mxfp4

transformers = pytest.importorskip("transformers")


def _load_hf(path: Path, mxfp4: bool) -> torch.nn.Module:
    kwargs: dict[str, object] = {"dtype": torch.float32}
    if mxfp4:
        # dequantize=True: transformers' own MXFP4 decoder, no `kernels` package needed
        kwargs["quantization_config"] = transformers.Mxfp4Config(dequantize=True)
    model: torch.nn.Module = transformers.GptOssForCausalLM.from_pretrained(path, **kwargs).eval()
    return model


@pytest.mark.parametrize("kind", ["hf", "hf-sharded", "hf-dense", "hf-dense-sharded"])
def test_transformers_loads_our_files(
    kind: str, written: dict[str, Path], tiny_weights: dict[str, torch.Tensor]
) -> None:
    model = _load_hf(written[kind], mxfp4=not kind.startswith("hf-dense"))
    sd = model.state_dict()
    ours = load_checkpoint(written[kind]).tensors
    assert torch.equal(sd["lm_head.weight"], tiny_weights["unembedding.weight"].float())
    assert torch.equal(sd["model.embed_tokens.weight"], ours["embedding.weight"].float())
    qkv = tiny_weights["block.1.attn.qkv.weight"].float()
    assert torch.equal(sd["model.layers.1.self_attn.q_proj.weight"], qkv[:64])
    assert torch.equal(sd["model.layers.1.self_attn.v_proj.weight"], qkv[96:])
    assert torch.equal(sd["model.layers.1.self_attn.sinks"], tiny_weights["block.1.attn.sinks"].float())
    for ours_name, theirs_name in (("mlp1_weight", "gate_up_proj"), ("mlp2_weight", "down_proj")):
        base = f"block.1.mlp.{ours_name}"
        ref = dequantize_mxfp4(tiny_weights[base + ".blocks"], tiny_weights[base + ".scales"], torch.float32)
        theirs = sd[f"model.layers.1.mlp.experts.{theirs_name}"]
        assert torch.equal(theirs, ref.transpose(1, 2)), theirs_name  # transformers: [E, in, out]
    assert torch.equal(
        sd["model.layers.0.mlp.experts.gate_up_proj_bias"], tiny_weights["block.0.mlp.mlp1_bias"].float()
    )
    with torch.no_grad():
        logits = model(torch.tensor([[1, 5, 9, 200, 3, 7, 11, 13, 17, 19]])).logits
    assert bool(torch.isfinite(logits).all())
    assert 0.2 < float(logits.std()) < 20  # random model, but not degenerate
