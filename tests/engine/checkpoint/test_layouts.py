"""Every layout, sharded or not, loads to the same canonical tensors; layout is detected from contents only."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import torch

from gpt_oss_desktop.engine.checkpoint import (
    Layout,
    RandomWeights,
    canonical_specs,
    load_checkpoint,
    random_weights,
    write_checkpoint,
)
from gpt_oss_desktop.engine.checkpoint.writer import shard_file_names
from gpt_oss_desktop.kernels.mxfp4 import dequantize_mxfp4

from .conftest import SEED, TINY

MXFP4_KINDS = ["original", "original-sharded", "hf", "hf-sharded", "snapshot"]
DENSE_KINDS = ["hf-dense", "hf-dense-sharded"]
EXPECTED_LAYOUT = {
    "original": Layout.ORIGINAL,
    "original-sharded": Layout.ORIGINAL,
    "hf": Layout.HF_MXFP4,
    "hf-sharded": Layout.HF_MXFP4,
    "snapshot": Layout.ORIGINAL,
    "hf-dense": Layout.HF_DENSE,
    "hf-dense-sharded": Layout.HF_DENSE,
}


@pytest.mark.parametrize("kind", MXFP4_KINDS + DENSE_KINDS)
def test_layout_and_shapes(kind: str, written: dict[str, Path]) -> None:
    ck = load_checkpoint(written[kind])
    assert ck.layout is EXPECTED_LAYOUT[kind]
    assert ck.config == TINY
    specs = canonical_specs(TINY, mxfp4=ck.layout.mxfp4)
    assert list(ck.tensors) == list(specs)
    for name, spec in specs.items():
        t = ck.tensors[name]
        assert tuple(t.shape) == spec.shape, name
        assert t.dtype in spec.dtypes, name
    assert ck.nbytes == sum(t.numel() * t.element_size() for t in ck.tensors.values())
    assert all(p.parent == ck.root for p in ck.files)


@pytest.mark.parametrize("kind", MXFP4_KINDS)
def test_mxfp4_layouts_hold_the_written_tensors(
    kind: str, written: dict[str, Path], tiny_weights: dict[str, torch.Tensor]
) -> None:
    ck = load_checkpoint(written[kind])
    assert set(ck.tensors) == set(tiny_weights)
    for name, value in tiny_weights.items():
        assert ck.tensors[name].dtype == value.dtype, name
        assert torch.equal(ck.tensors[name], value), name


@pytest.mark.parametrize("kind", DENSE_KINDS)
def test_dense_layout_holds_the_exact_dequantised_experts(
    kind: str, written: dict[str, Path], tiny_weights: dict[str, torch.Tensor]
) -> None:
    ck = load_checkpoint(written[kind])
    for name, t in ck.tensors.items():
        if name.endswith(("mlp1_weight", "mlp2_weight")):
            ref = dequantize_mxfp4(tiny_weights[name + ".blocks"], tiny_weights[name + ".scales"], torch.bfloat16)
            # canonical orientation [E, out, in]: mlp1 [E, 2I, H], mlp2 [E, H, I]; a transposed view of the file
            assert not t.is_contiguous()
            assert torch.equal(t, ref), name
        else:
            assert torch.equal(t, tiny_weights[name]), name


def test_shard_file_names() -> None:
    assert shard_file_names(Layout.ORIGINAL, 1) == ["model.safetensors"]
    assert shard_file_names(Layout.ORIGINAL, 2) == [
        "model--00001-of-00002.safetensors",
        "model--00002-of-00002.safetensors",
    ]
    assert shard_file_names(Layout.HF_MXFP4, 3) == [f"model-0000{k}-of-00002.safetensors" for k in range(3)]


def test_snapshot_loads_original_only(written: dict[str, Path]) -> None:
    root = written["snapshot"]
    ck = load_checkpoint(root)
    assert ck.root == root / "original"
    assert [p.name for p in ck.files] == shard_file_names(Layout.ORIGINAL, 2)
    # pointing at original/ directly gives the same thing
    direct = load_checkpoint(root / "original")
    assert direct.root == ck.root and direct.files == ck.files


def test_snapshot_without_original_weights_uses_the_root(tmp_path: Path, written: dict[str, Path]) -> None:
    shutil.copytree(written["snapshot"], tmp_path / "snap")
    for p in (tmp_path / "snap" / "original").glob("model*"):
        p.unlink()  # a selective download: original/config.json and dtypes.json only
    ck = load_checkpoint(tmp_path / "snap")
    assert ck.layout is Layout.HF_MXFP4
    assert ck.root == tmp_path / "snap"


def test_layout_comes_from_contents_not_folder_names(tmp_path: Path, written: dict[str, Path]) -> None:
    # HF files in a folder called "original" inside a folder holding an OpenAI checkpoint: the child wins (it has
    # weights) and is read as what it is.
    shutil.copytree(written["original"], tmp_path / "snap")
    shutil.copytree(written["hf-dense"], tmp_path / "snap" / "original")
    ck = load_checkpoint(tmp_path / "snap")
    assert ck.layout is Layout.HF_DENSE


def test_index_free_shards_are_found_by_scanning(
    tmp_path: Path, written: dict[str, Path], tiny_weights: dict[str, torch.Tensor]
) -> None:
    # OpenAI's own loader ignores the index and opens every *.safetensors in the folder
    shutil.copytree(written["original-sharded"], tmp_path / "ck")
    (tmp_path / "ck" / "model.safetensors.index.json").unlink()
    ck = load_checkpoint(tmp_path / "ck")
    assert len(ck.files) == 3
    assert torch.equal(ck.tensors["unembedding.weight"], tiny_weights["unembedding.weight"])


def test_transformers_save_pretrained_output_loads(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GptOssConfig(
        num_hidden_layers=2,
        num_local_experts=4,
        num_experts_per_tok=2,
        vocab_size=96,
        hidden_size=64,
        intermediate_size=32,
        head_dim=16,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=8,
    )
    torch.manual_seed(0)
    model = transformers.GptOssForCausalLM(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    model.save_pretrained(tmp_path)
    ck = load_checkpoint(tmp_path)
    assert ck.layout is Layout.HF_DENSE
    assert ck.config.intermediate_size == 32 and ck.config.vocab_size == 96
    sd = model.state_dict()
    experts = model.model.layers[1].mlp.experts
    # transformers: gate_up_proj [E, H, 2I], down_proj [E, I, H]; canonical: [E, 2I, H], [E, H, I]
    assert torch.equal(ck.tensors["block.1.mlp.mlp1_weight"], experts.gate_up_proj.transpose(1, 2))
    assert torch.equal(ck.tensors["block.1.mlp.mlp2_weight"], experts.down_proj.transpose(1, 2))
    assert ck.tensors["block.1.mlp.mlp2_weight"].shape == (4, 64, 32)
    qkv = ck.tensors["block.0.attn.qkv.weight"]
    attn = "model.layers.0.self_attn."
    assert torch.equal(
        qkv, torch.cat([sd[attn + "q_proj.weight"], sd[attn + "k_proj.weight"], sd[attn + "v_proj.weight"]])
    )
    assert torch.equal(ck.tensors["block.0.attn.qkv.bias"][64:96], sd[attn + "k_proj.bias"])
    assert torch.equal(ck.tensors["unembedding.weight"], sd["lm_head.weight"])
    assert ck.tensors["embedding.weight"].dtype == torch.float32


def test_writer_quantises_dense_input(tmp_path: Path, tiny_weights: dict[str, torch.Tensor]) -> None:
    dense = {k: v for k, v in tiny_weights.items() if not k.endswith((".blocks", ".scales"))}
    for name in list(tiny_weights):
        if name.endswith(".blocks"):
            base = name.removesuffix(".blocks")
            dense[base] = dequantize_mxfp4(tiny_weights[name], tiny_weights[base + ".scales"], torch.float32)
    write_checkpoint(tmp_path, TINY, dense, "original")
    ck = load_checkpoint(tmp_path)
    for base in (n.removesuffix(".blocks") for n in tiny_weights if n.endswith(".blocks")):
        got = dequantize_mxfp4(ck.tensors[base + ".blocks"], ck.tensors[base + ".scales"], torch.float32)
        assert torch.equal(got, dense[base]), base


def test_writer_dtype_and_overwrite(tmp_path: Path, tiny_weights: dict[str, torch.Tensor]) -> None:
    write_checkpoint(tmp_path, TINY, tiny_weights, "hf-dense", dtype=torch.float32)
    ck = load_checkpoint(tmp_path)
    assert ck.tensors["norm.scale"].dtype == torch.float32
    assert ck.tensors["block.0.mlp.mlp1_weight"].dtype == torch.float32
    from gpt_oss_desktop.engine.errors import CheckpointError

    with pytest.raises(CheckpointError, match="already holds a checkpoint"):
        write_checkpoint(tmp_path, TINY, tiny_weights, "original", shards=2)
    write_checkpoint(tmp_path, TINY, tiny_weights, "original", shards=2, overwrite=True)
    assert load_checkpoint(tmp_path).layout is Layout.ORIGINAL
    assert not (tmp_path / "model.safetensors").exists()


def test_random_weights_are_deterministic_and_order_independent() -> None:
    a = random_weights(TINY, seed=SEED)
    b = random_weights(TINY, seed=SEED)
    c = random_weights(TINY, seed=SEED + 1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["embedding.weight"], c["embedding.weight"])
    lazy = RandomWeights(TINY, seed=SEED)
    assert torch.equal(lazy["block.1.mlp.mlp2_weight.scales"], a["block.1.mlp.mlp2_weight.scales"])
    scales = a["block.0.mlp.mlp1_weight.scales"].int()
    assert int(scales.min()) > 100 and int(scales.max()) < 127  # multipliers well below 1, far from the extremes


class _CountingMapping(Mapping[str, torch.Tensor]):
    """Records how often each tensor is fetched (the writer must stream: one fetch per tensor)."""

    def __init__(self, inner: Mapping[str, torch.Tensor]) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()

    def __getitem__(self, key: str) -> torch.Tensor:
        self.counts[key] += 1
        return self.inner[key]

    def __contains__(self, key: object) -> bool:
        return key in self.inner  # Mapping's default would fetch the tensor

    def __iter__(self) -> Iterator[str]:
        return iter(self.inner)

    def __len__(self) -> int:
        return len(self.inner)


@pytest.mark.parametrize(("layout", "shards"), [("original", 5), ("hf", 4), ("hf-dense", 3)])
def test_writer_fetches_each_tensor_once(tmp_path: Path, layout: str, shards: int) -> None:
    weights = _CountingMapping(RandomWeights(TINY, seed=SEED))
    write_checkpoint(tmp_path, TINY, weights, layout, shards=shards)
    assert set(weights.counts) == set(weights.inner)
    assert set(weights.counts.values()) == {1}
    assert len(load_checkpoint(tmp_path).files) == shards
